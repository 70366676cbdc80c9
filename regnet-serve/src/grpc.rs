//! The protocol over gRPC: the `GRPCInferenceService` generated from its `.proto`, with raw
//! tensor contents.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::{BufferSettings, DecodeBuf};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tonic_prost::{ProstCodec, ProstDecoder};

use crate::error::RequestError;
use crate::error::ServeError;
use crate::metrics::Protocol;
use crate::model::{TensorMetadata, VERSION};
use crate::proto::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use crate::proto::infer_parameter::ParameterChoice;
use crate::proto::model_infer_response::InferOutputTensor;
use crate::proto::model_metadata_response::TensorMetadata as ProtoTensor;
use crate::proto::{self, InferParameter};
use crate::state::State;
use crate::tensor::{Elements, InferRequest, InferResponse, Input, RequestedOutput};

pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let max_body = state.config.max_body;
    let service = GrpcInferenceServiceServer::new(Service { state })
        .max_decoding_message_size(max_body)
        .max_encoding_message_size(usize::MAX);
    // Nagle's algorithm with delayed acknowledgements holds small frames back by tens of
    // milliseconds; and windows that take a whole 224×224 batch in one go spare the round
    // trips of window updates.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stopped.wait_for(|&stop| stop).await;
        })
        .await
        .map_err(|e| ServeError::Endpoint {
            protocol: "gRPC",
            reason: e.to_string(),
        })
}

/// Prost's codec, with undecodable messages reported as the client's error: tonic's own says
/// INTERNAL, the status for a server fault.
pub(crate) struct Codec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec(ProstCodec::default())
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as tonic::codec::Codec>::Encoder;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder(self.0.decoder())
    }
}

pub(crate) struct Decoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> tonic::codec::Decoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            let error = RequestError::Malformed(format!(
                "the protobuf message does not decode: {}",
                status.message()
            ));
            error.grpc_status()
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

struct Service {
    state: Arc<State>,
}

fn tensors(tensors: Vec<TensorMetadata>) -> Vec<ProtoTensor> {
    tensors
        .into_iter()
        .map(|t| ProtoTensor {
            name: t.name.to_owned(),
            datatype: t.datatype.to_owned(),
            shape: t.shape,
        })
        .collect()
}

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(
        &self,
        _: Request<proto::ServerLiveRequest>,
    ) -> Result<Response<proto::ServerLiveResponse>, Status> {
        Ok(Response::new(proto::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<proto::ServerReadyRequest>,
    ) -> Result<Response<proto::ServerReadyResponse>, Status> {
        let ready = self.state.is_ready();
        Ok(Response::new(proto::ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<proto::ModelReadyRequest>,
    ) -> Result<Response<proto::ModelReadyResponse>, Status> {
        let request = request.into_inner();
        let model = self
            .state
            .model(&request.name, &request.version)
            .map_err(|e| e.grpc_status())?;
        let ready = self.state.model_ready(model);
        Ok(Response::new(proto::ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<proto::ServerMetadataRequest>,
    ) -> Result<Response<proto::ServerMetadataResponse>, Status> {
        Ok(Response::new(proto::ServerMetadataResponse {
            name: "regnet".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: crate::EXTENSIONS.iter().map(|&e| e.to_owned()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<proto::ModelMetadataRequest>,
    ) -> Result<Response<proto::ModelMetadataResponse>, Status> {
        let request = request.into_inner();
        let model = self
            .state
            .model(&request.name, &request.version)
            .map_err(|e| e.grpc_status())?;
        Ok(Response::new(proto::ModelMetadataResponse {
            name: model.name.clone(),
            versions: vec![VERSION.into()],
            platform: "regnet".into(),
            inputs: tensors(model.inputs()),
            outputs: tensors(model.outputs()),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<proto::ModelInferRequest>,
    ) -> Result<Response<proto::ModelInferResponse>, Status> {
        let arrived = Instant::now();
        let request = request.into_inner();
        let (model, version) = (request.model_name.clone(), request.model_version.clone());
        let admitted = self
            .state
            .admit(&model, &version)
            .and_then(|admitted| Ok((admitted, infer_request(request)?)));
        self.state
            .infer(Protocol::Grpc, &model, admitted, arrived)
            .await
            .map(|response| Response::new(infer_response(response)))
            .map_err(|error| error.grpc_status())
    }
}

fn infer_request(request: proto::ModelInferRequest) -> Result<InferRequest, RequestError> {
    let raw = request.raw_input_contents;
    if !raw.is_empty() && raw.len() != request.inputs.len() {
        return Err(RequestError::Malformed(format!(
            "raw_input_contents has {} entries for {} inputs; give one per input, in order",
            raw.len(),
            request.inputs.len()
        )));
    }
    let mut raw = raw.into_iter();
    let inputs = request
        .inputs
        .into_iter()
        .map(|input| {
            let contents = input.contents.unwrap_or_default();
            let elements = match raw.next() {
                Some(bytes) => Elements::Raw(bytes),
                None if input.datatype == "BYTES" => Elements::Strings(contents.bytes_contents),
                None => Elements::Floats(contents.fp32_contents),
            };
            Input {
                name: input.name,
                datatype: input.datatype,
                shape: input.shape,
                elements,
            }
        })
        .collect();
    let outputs = if request.outputs.is_empty() {
        None
    } else {
        let outputs = request.outputs.into_iter().map(|output| {
            Ok(RequestedOutput {
                classification: classification(&output.parameters)?,
                binary: false,
                name: output.name,
            })
        });
        Some(outputs.collect::<Result<_, RequestError>>()?)
    };
    Ok(InferRequest {
        id: request.id,
        inputs,
        outputs,
        binary_outputs: false,
    })
}

fn classification(
    parameters: &HashMap<String, InferParameter>,
) -> Result<Option<usize>, RequestError> {
    let Some(parameter) = parameters.get("classification") else {
        return Ok(None);
    };
    match parameter.parameter_choice {
        Some(ParameterChoice::Int64Param(k)) => usize::try_from(k).map(Some).map_err(|_| {
            RequestError::Malformed(format!(
                "parameter `classification` must be a count of classes, not {k}"
            ))
        }),
        _ => Err(RequestError::Malformed(
            "parameter `classification` must be an int64_param".into(),
        )),
    }
}

/// Every output in raw form, as Triton answers.
fn infer_response(response: InferResponse) -> proto::ModelInferResponse {
    let raw_output_contents = response.outputs.iter().map(|o| o.raw()).collect();
    let outputs = response
        .outputs
        .iter()
        .map(|output| InferOutputTensor {
            name: output.name.clone(),
            datatype: output.datatype().to_owned(),
            shape: output.shape.clone(),
            parameters: HashMap::new(),
            contents: None,
        })
        .collect();
    proto::ModelInferResponse {
        model_name: response.model_name,
        model_version: response.model_version,
        id: response.id,
        parameters: HashMap::new(),
        outputs,
        raw_output_contents,
    }
}
