//! `bucketsync`: vaults from the terminal. A thin layer over the core's `Session`, as the
//! bindings are: every sync rule lives in the core.

mod args;
mod backup;
mod commands;
mod cost;
mod doctor;
mod folder;
mod output;
mod profile;
mod records;
mod running;
mod sharing;
mod signer;
mod text;
mod vault;

use std::process::ExitCode;

use clap::Parser;

use crate::output::{Failure, Output};

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let out = Output {
        json: cli.global.json,
        cost: cli.global.cost,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let failure = Failure::Core(bucketsync::Error::Config(format!(
                "cannot start the async runtime: {e}"
            )));
            out.failure(&failure);
            return failure.exit_code();
        }
    };
    let code = match runtime.block_on(commands::run(&cli, out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            out.failure(&failure);
            failure.exit_code()
        }
    };
    if out.cost && !out.json {
        eprint!("{}", cost::bill().text());
    }
    code
}
