//! `regnet serve`: the models named on the command line behind the Open Inference Protocol
//! (see the `regnet-serve` crate), until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use regnet::runtime::Device;
use regnet_serve::{Config, ModelSource, Server};

use crate::execute;
use crate::zoo::{Chosen, Unchosen};

/// One `--model NAME=MODEL[:WEIGHTS]`, or the positional shorthand (named as results name
/// the model: a built-in model's name, a spec file's stem).
#[derive(Clone)]
pub struct Named {
    pub name: Option<String>,
    pub model: PathBuf,
    pub weights: Option<PathBuf>,
}

/// `NAME=MODEL[:WEIGHTS]`: the name clients use, a built-in model or spec file, and its
/// checkpoint (random weights without one).
pub fn parse_named(text: &str) -> Result<Named, String> {
    let (name, rest) = text.split_once('=').ok_or_else(|| {
        "expected NAME=MODEL[:WEIGHTS], e.g. y400=regnety_400mf:weights.safetensors".to_owned()
    })?;
    let (model, weights) = match rest.split_once(':') {
        Some((model, weights)) => (model, Some(PathBuf::from(weights))),
        None => (rest, None),
    };
    if name.is_empty() || model.is_empty() {
        return Err("NAME and MODEL must not be empty (NAME=MODEL[:WEIGHTS])".to_owned());
    }
    Ok(Named {
        name: Some(name.to_owned()),
        model: PathBuf::from(model),
        weights,
    })
}

/// A whole number and the unit written right after it: `2ms` is (2, "ms").
fn number_and_unit(text: &str) -> Result<(u64, &str), String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a whole number"))?;
    Ok((number, unit))
}

/// A duration with its unit: `500us`, `2ms`, `1s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match number_and_unit(text)? {
        (_, "") => Err(format!("`{text}` has no unit; write e.g. 500us, 2ms or 1s")),
        (number, "us" | "µs") => Ok(Duration::from_micros(number)),
        (number, "ms") => Ok(Duration::from_millis(number)),
        (number, "s") => Ok(Duration::from_secs(number)),
        (_, unit) => Err(format!("unknown unit `{unit}`; use us, ms or s")),
    }
}

/// A size in bytes, optionally in KiB, MiB or GiB: `1048576`, `64MiB`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let (number, unit) = number_and_unit(text)?;
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("unknown unit `{unit}`; use KiB, MiB or GiB")),
    };
    number
        .checked_mul(scale)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| format!("`{text}` is too large"))
}

pub struct Serve {
    pub models: Vec<Named>,
    pub config: Config,
    pub log_json: bool,
}

/// The class names of a model's outputs: ImageNet's for 1000 classes, none otherwise.
fn labels(chosen: &Chosen) -> Option<Arc<[String]>> {
    (chosen.architecture.num_classes == 1000).then(|| {
        crate::classify::IMAGENET_CLASSES
            .lines()
            .map(str::to_owned)
            .collect()
    })
}

/// Compiles every model's spec (errors before anything listens), then serves until a signal.
pub fn serve(
    serve: Serve,
    choose: impl Fn(&std::path::Path) -> Result<Chosen, Unchosen>,
) -> Result<(), ServeFailure> {
    let mut sources = Vec::with_capacity(serve.models.len());
    for named in serve.models {
        let chosen = choose(&named.model).map_err(ServeFailure::Model)?;
        let name = named.name.unwrap_or_else(|| chosen.stem.clone());
        if named.weights.is_none() {
            eprintln!(
                "warning: model `{name}` has no checkpoint (NAME=MODEL:WEIGHTS): it serves random \
                 weights, for trying the server out"
            );
        }
        let architecture = chosen.architecture;
        let labels = labels(&chosen);
        let weights = named.weights;
        sources.push(ModelSource {
            name,
            architecture,
            labels,
            load: Box::new(move || execute::network(&chosen, weights.as_deref(), Device::Cpu)),
        });
    }
    init_logs(serve.log_json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeFailure::Server(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let server = Server::start(serve.config, sources)
            .await
            .map_err(|e| ServeFailure::Server(e.to_string()))?;
        eprintln!(
            "regnet serve: HTTP on http://{}, gRPC on {}; loading",
            server.http_addr(),
            server.grpc_addr()
        );
        tokio::select! {
            loaded = server.loaded() => {
                if let Err(error) = loaded {
                    let _ = server.shutdown().await;
                    return Err(ServeFailure::Server(error.to_string()));
                }
                eprintln!("regnet serve: ready");
            }
            () = regnet_serve::shutdown_signal() => {}
        }
        regnet_serve::shutdown_signal().await;
        eprintln!("regnet serve: stopping (finishing the requests already received)");
        server
            .shutdown()
            .await
            .map_err(|e| ServeFailure::Server(e.to_string()))
    })
}

pub enum ServeFailure {
    Model(Unchosen),
    Server(String),
}

/// Logs to stderr: human-readable, or one JSON object per line; `RUST_LOG` sets the level
/// (default `info`).
fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_arguments_durations_and_sizes_parse_or_say_why_not() {
        let named = parse_named("y4=regnety_400mf:w/model.safetensors").unwrap();
        assert_eq!(named.name.as_deref(), Some("y4"));
        assert_eq!(named.model, PathBuf::from("regnety_400mf"));
        assert_eq!(named.weights, Some(PathBuf::from("w/model.safetensors")));
        assert!(parse_named("y4=regnety_400mf").unwrap().weights.is_none());
        assert!(parse_named("regnety_400mf").is_err());
        assert!(parse_named("=regnety_400mf").is_err());
        assert_eq!(parse_duration("500us").unwrap(), Duration::from_micros(500));
        assert_eq!(parse_duration("2ms").unwrap(), Duration::from_millis(2));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("2h").is_err());
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("1TB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
