//! The server: its models, both listeners, loading and graceful shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use regnet::runtime::spec::Architecture;
use regnet::runtime::{Network, Workspace};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::batcher::{Batcher, Limits};
use crate::config::Config;
use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::model::ServedModel;
use crate::state::State;

/// A model to serve: its name in URLs, its architecture, and how to get its network.
pub struct ModelSource {
    /// The name clients use (`/v2/models/{name}`).
    pub name: String,
    /// Its architecture (metadata is answered from it while the weights load).
    pub architecture: Architecture<'static>,
    /// Class names, by index, for the classification extension.
    pub labels: Option<Arc<[String]>>,
    /// Loads the network (reads and prepares the weights); runs on a thread of its own.
    pub load: Box<dyn FnOnce() -> Result<Network, String> + Send>,
}

impl std::fmt::Debug for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSource")
            .field("name", &self.name)
            .field("architecture", &self.architecture.name)
            .finish_non_exhaustive()
    }
}

/// A running server. Dropping it without [`Server::shutdown`] stops the endpoints abruptly.
pub struct Server {
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    loaded: watch::Receiver<LoadOutcome>,
    http: JoinHandle<Result<(), ServeError>>,
    grpc: JoinHandle<Result<(), ServeError>>,
}

impl Server {
    /// Listens on both addresses at once (so that liveness answers while weights load), then
    /// loads every model on a thread of its own, warms it up with a full batch, and becomes
    /// ready when all are.
    pub async fn start(config: Config, models: Vec<ModelSource>) -> Result<Server, ServeError> {
        check(&config, &models)?;
        let http_listener = bind(config.http).await?;
        let grpc_listener = bind(config.grpc).await?;
        let http_addr = local_addr(&http_listener, config.http)?;
        let grpc_addr = local_addr(&grpc_listener, config.grpc)?;
        let metrics = Metrics::new(config.max_batch);
        let served: BTreeMap<String, Arc<ServedModel>> = models
            .iter()
            .map(|source| {
                let model = ServedModel {
                    name: source.name.clone(),
                    resolution: source.architecture.resolution,
                    classes: source.architecture.num_classes,
                    max_batch: config.max_batch,
                    labels: source.labels.clone(),
                    batcher: OnceLock::new(),
                    admission: Arc::new(tokio::sync::Semaphore::new(
                        config.max_queue + config.max_batch,
                    )),
                };
                (source.name.clone(), Arc::new(model))
            })
            .collect();
        let state = Arc::new(State {
            models: served,
            config,
            metrics,
            ready: AtomicBool::new(false),
        });
        let (stop, stopped) = watch::channel(false);
        let http = tokio::spawn(crate::http::serve(
            http_listener,
            Arc::clone(&state),
            stopped.clone(),
        ));
        let grpc = tokio::spawn(crate::grpc::serve(
            grpc_listener,
            Arc::clone(&state),
            stopped,
        ));
        let loaded = load_all(Arc::clone(&state), models);
        tracing::info!(%http_addr, %grpc_addr, "listening");
        Ok(Server {
            http_addr,
            grpc_addr,
            state,
            stop,
            loaded,
            http,
            grpc,
        })
    }

    /// Where the HTTP endpoint listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where the gRPC endpoint listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Waits until every model is loaded and warmed up (the server is then ready), or one
    /// failed to load.
    pub async fn loaded(&self) -> Result<(), ServeError> {
        let mut loaded = self.loaded.clone();
        let outcome = loaded
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ServeError::Config("the loading threads stopped".into()))?
            .clone();
        match outcome {
            Some(Err((model, reason))) => Err(ServeError::Load { model, reason }),
            _ => Ok(()),
        }
    }

    /// Stops gracefully: not ready any more, no new connections, every request already
    /// received answered (those queued run), workers stopped.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.state.ready.store(false, Ordering::SeqCst);
        // Ignored when both endpoints have already stopped on their own.
        let _ = self.stop.send(true);
        let http = self.http.await;
        let grpc = self.grpc.await;
        let state = self.state;
        // Both endpoints have answered their requests; now nothing can be queued any more.
        tokio::task::spawn_blocking(move || {
            for model in state.models.values() {
                if let Some(batcher) = model.batcher.get() {
                    batcher.close();
                }
            }
        })
        .await
        .map_err(|e| ServeError::Endpoint {
            protocol: "worker",
            reason: e.to_string(),
        })?;
        for (protocol, joined) in [("HTTP", http), ("gRPC", grpc)] {
            joined.map_err(|e| ServeError::Endpoint {
                protocol,
                reason: e.to_string(),
            })??;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

fn check(config: &Config, models: &[ModelSource]) -> Result<(), ServeError> {
    if models.is_empty() {
        return Err(ServeError::Config("no model to serve".into()));
    }
    for (i, model) in models.iter().enumerate() {
        if models[..i].iter().any(|m| m.name == model.name) {
            return Err(ServeError::Config(format!(
                "two models are named `{}`; give each its own name",
                model.name
            )));
        }
        if model.name.is_empty() || model.name.contains('/') {
            return Err(ServeError::Config(format!(
                "model name `{}` cannot be part of a URL; use letters, digits, `-`, `_` and `.`",
                model.name
            )));
        }
    }
    for (value, flag) in [
        (config.max_batch, "--max-batch"),
        (config.max_queue, "--max-queue"),
        (config.max_body, "--max-body"),
    ] {
        if value == 0 {
            return Err(ServeError::Config(format!("{flag} must be at least 1")));
        }
    }
    Ok(())
}

async fn bind(address: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind { address, source })
}

fn local_addr(listener: &TcpListener, address: SocketAddr) -> Result<SocketAddr, ServeError> {
    listener
        .local_addr()
        .map_err(|source| ServeError::Bind { address, source })
}

/// Nothing yet while models load; then success, or the first model that failed and why.
type LoadOutcome = Option<Result<(), (String, String)>>;

/// Loads every model on a thread of its own.
fn load_all(state: Arc<State>, models: Vec<ModelSource>) -> watch::Receiver<LoadOutcome> {
    let (done, loaded) = watch::channel(None);
    std::thread::spawn(move || {
        let loads: Vec<_> = models
            .into_iter()
            .map(|source| {
                let state = Arc::clone(&state);
                let name = source.name.clone();
                let load = std::thread::spawn(move || load_one(&state, source));
                (name, load)
            })
            .collect();
        let mut outcome = Ok(());
        for (name, load) in loads {
            let result = load
                .join()
                .unwrap_or_else(|_| Err("loading panicked".to_owned()));
            if let Err(reason) = result
                && outcome.is_ok()
            {
                tracing::error!(model = %name, %reason, "failed to load");
                outcome = Err((name, reason));
            }
        }
        if outcome.is_ok() {
            state.ready.store(true, Ordering::SeqCst);
            tracing::info!("ready");
        }
        done.send_replace(Some(outcome));
    });
    loaded
}

fn load_one(state: &State, source: ModelSource) -> Result<(), String> {
    let started = Instant::now();
    let network = (source.load)()?;
    let architecture = network.architecture();
    if (architecture.resolution, architecture.num_classes)
        != (
            source.architecture.resolution,
            source.architecture.num_classes,
        )
    {
        return Err(format!(
            "the loaded network takes {0}×{0} images into {1} classes, not the {2}×{2} into \
             {3} its architecture says",
            architecture.resolution,
            architecture.num_classes,
            source.architecture.resolution,
            source.architecture.num_classes
        ));
    }
    let config = state.config;
    let mut workspace = Workspace::with_options(architecture, config.max_batch, config.options)
        .map_err(|e| e.to_string())?;
    // One full batch first: the workspace's pages touched and the threads started, so the
    // first client does not pay for them.
    let floats = config.max_batch * 3 * architecture.resolution * architecture.resolution;
    network
        .forward(&vec![0.0; floats], &mut workspace)
        .map_err(|e| e.to_string())?;
    let limits = Limits {
        max_batch: config.max_batch,
        max_delay: config.max_delay,
        max_queue: config.max_queue,
    };
    let batcher = Batcher::start(
        &source.name,
        network,
        workspace,
        limits,
        state.metrics.clone(),
    )
    .map_err(|e| format!("cannot start its worker thread: {e}"))?;
    let model = &state.models[&source.name];
    if model.batcher.set(batcher).is_err() {
        return Err("loaded twice".into());
    }
    tracing::info!(model = %source.name, elapsed_ms = started.elapsed().as_millis() as u64, "loaded and warmed up");
    Ok(())
}

/// Resolves at SIGTERM or SIGINT (Ctrl-C): what a container runtime or a terminal sends to stop
/// the server.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
