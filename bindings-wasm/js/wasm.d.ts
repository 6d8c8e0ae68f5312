/** The package's WebAssembly module, as the URL a bundler's file loader gives for it. */
declare const url: string;
export default url;
