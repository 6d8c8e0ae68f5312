//! Python bindings of bucketsync: conversions, locking and error mapping only; every rule lives
//! in the core. The Pythonic surface (exceptions, re-exports) is in `python/bucketsync`.
#![forbid(unsafe_code)]

mod auto_sync;
mod backup;
mod convert;
mod errors;
mod files;
mod records;
mod sharing;
mod transport;
mod vault;

use pyo3::prelude::*;

#[pymodule]
fn _bucketsync(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<vault::Vault>()?;
    m.add_class::<auto_sync::Event>()?;
    m.add_class::<vault::FileReader>()?;
    m.add_class::<files::PyCancel>()?;
    m.add_class::<vault::VaultKey>()?;
    m.add_class::<vault::Credentials>()?;
    m.add_class::<vault::SyncReport>()?;
    m.add_class::<convert::Progress>()?;
    m.add_class::<files::FileProgress>()?;
    m.add_class::<files::FileReport>()?;
    m.add_class::<files::PutFilesReport>()?;
    m.add_class::<files::FileInfo>()?;
    m.add_class::<backup::BackupReport>()?;
    m.add_class::<backup::RestoreReport>()?;
    m.add_class::<backup::FolderReport>()?;
    m.add_class::<backup::VerifyReport>()?;
    m.add_class::<records::ExportReport>()?;
    m.add_class::<records::ImportReport>()?;
    m.add_class::<sharing::Identity>()?;
    m.add_class::<sharing::SharedVault>()?;
    m.add_class::<sharing::Member>()?;
    m.add_class::<sharing::InvitationInfo>()?;
    m.add_function(wrap_pyfunction!(sharing::invitation_info, m)?)?;
    m.add_class::<convert::PyResponse>()?;
    m.add_class::<convert::PyRequest>()?;
    m.add("FORMAT_VERSION", bucketsync::FORMAT_VERSION)?;
    Ok(())
}
