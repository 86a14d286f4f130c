//! Compiles proto/ with protox (pure Rust), so that building Braid needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        root.join("braid/v1/braid.proto"),
        root.join("braid/internal/v1/internal.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        // Record data and node-to-node payloads as `bytes::Bytes`: decoding slices the received
        // buffer instead of copying it, and cloning a request (for a retry) copies no data.
        .bytes(".braid.v1.PutRecordRequest.data")
        .bytes(".braid.v1.PutRecordsRequestEntry.data")
        .bytes(".braid.v1.Record.data")
        .bytes(".braid.internal")
        // Every service encodes through a codec that sizes the buffer once (see src/codec.rs).
        .codec_path("crate::codec::SizedProstCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
