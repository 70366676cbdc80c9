//! Generates the gRPC service and messages from the protocol's definition, with a protobuf
//! compiler written in Rust so that building needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let definition = "proto/grpc_predict_v2.proto";
    println!("cargo:rerun-if-changed={definition}");
    let descriptors = protox::compile([definition], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Prost's codec, with a message that does not decode answered as the client's error
        // (INVALID_ARGUMENT) rather than the server's (INTERNAL).
        .codec_path("crate::grpc::Codec")
        .compile_fds(descriptors)?;
    Ok(())
}
