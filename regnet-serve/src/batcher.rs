//! Dynamic batching: the requests to one model queue up, a worker thread combines those that
//! arrive within `max_delay` of the first into one batch of at most `max_batch` images, runs it
//! on the model's workspace and hands every request its own rows of the result.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use regnet::runtime::{Network, Workspace};
use tokio::sync::oneshot;

use crate::error::RequestError;
use crate::metrics::{Gauge, Metrics};

/// One request's images on their way to the worker.
struct Job {
    /// NCHW floats of `images` images.
    input: Vec<f32>,
    images: usize,
    arrived: Instant,
    reply: oneshot::Sender<Result<Vec<f32>, RequestError>>,
}

/// Limits of a model's batching.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_batch: usize,
    pub max_delay: Duration,
    pub max_queue: usize,
}

/// A model's queue and the worker that empties it.
pub(crate) struct Batcher {
    model: String,
    /// Taken (closing the queue) at shutdown; the worker then finishes what is queued.
    queue: Mutex<Option<SyncSender<Job>>>,
    /// Requests waiting for the worker (the metrics' queue depth).
    queued: Gauge,
    max_queue: usize,
    worker: Mutex<Option<JoinHandle<()>>>,
    floats_per_image: usize,
}

impl Batcher {
    /// Starts the worker of `network`, which runs batches on `workspace` (its capacity at least
    /// `limits.max_batch`).
    pub(crate) fn start(
        model: &str,
        network: Network,
        workspace: Workspace,
        limits: Limits,
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        let architecture = *network.architecture();
        let floats_per_image = 3 * architecture.resolution * architecture.resolution;
        let classes = architecture.num_classes;
        let (sender, receiver) = std::sync::mpsc::sync_channel(limits.max_queue);
        let queued = metrics.queue_depth(model);
        let worker = Worker {
            model: model.to_owned(),
            network,
            workspace,
            limits,
            receiver,
            queued: queued.clone(),
            metrics,
            floats_per_image,
            classes,
            batch: Vec::new(),
        };
        let worker = std::thread::Builder::new()
            .name(format!("regnet-serve {model}"))
            .spawn(move || worker.run())?;
        Ok(Batcher {
            model: model.to_owned(),
            queue: Mutex::new(Some(sender)),
            queued,
            max_queue: limits.max_queue,
            worker: Mutex::new(Some(worker)),
            floats_per_image,
        })
    }

    /// Runs `images` images (NCHW floats, already checked) in the next batch and returns their
    /// logits, `[images][classes]`. A full queue refuses at once.
    pub(crate) async fn infer(
        &self,
        input: Vec<f32>,
        images: usize,
    ) -> Result<Vec<f32>, RequestError> {
        debug_assert_eq!(input.len(), images * self.floats_per_image);
        let (reply, result) = oneshot::channel();
        let job = Job {
            input,
            images,
            arrived: Instant::now(),
            reply,
        };
        {
            let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            let Some(queue) = queue.as_ref() else {
                return Err(RequestError::Unavailable(
                    "the server is shutting down; send the request to another replica".into(),
                ));
            };
            // Counted before sending so that the worker's decrement never comes first.
            self.queued.inc();
            match queue.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.queued.dec();
                    return Err(RequestError::QueueFull {
                        model: self.model.clone(),
                        queued: self.max_queue,
                    });
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.queued.dec();
                    return Err(RequestError::Internal(format!(
                        "the worker of model `{}` has stopped",
                        self.model
                    )));
                }
            }
        }
        result.await.unwrap_or_else(|_| {
            Err(RequestError::Internal(format!(
                "the worker of model `{}` stopped before answering",
                self.model
            )))
        })
    }

    /// Closes the queue and waits until the worker has answered everything queued.
    pub(crate) fn close(&self) {
        drop(self.queue.lock().unwrap_or_else(|p| p.into_inner()).take());
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(worker) = worker {
            // A panicking worker has already dropped every reply, which answers them as
            // internal errors; nothing more to do here.
            let _ = worker.join();
        }
    }
}

struct Worker {
    model: String,
    network: Network,
    workspace: Workspace,
    limits: Limits,
    receiver: Receiver<Job>,
    /// Requests waiting for the worker (the metrics' queue depth).
    queued: Gauge,
    metrics: Metrics,
    floats_per_image: usize,
    classes: usize,
    /// The combined input of a batch of several requests, reused.
    batch: Vec<f32>,
}

impl Worker {
    fn run(mut self) {
        // A request that did not fit the last batch: it starts the next one.
        let mut carried: Option<Job> = None;
        // How many images the last batch had: as many requests as made it are expected back, so
        // a batch waits (at most `max_delay`) only until that many images are in. A lone
        // client's requests then never wait for company that is not coming, and a batch of
        // eight clients goes as soon as the eighth request is in.
        let mut expected = 1;
        loop {
            let first = match carried.take() {
                Some(job) => job,
                None => match self.receiver.recv() {
                    Ok(job) => self.taken(job),
                    // Closed and empty: shutdown.
                    Err(_) => return,
                },
            };
            let deadline = first.arrived + self.limits.max_delay;
            let mut images = first.images;
            let mut jobs = vec![first];
            while images < self.limits.max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                // Past the expected count (or the deadline), only what is already waiting.
                let next = if images < expected && !left.is_zero() {
                    self.receiver.recv_timeout(left).map_err(|e| match e {
                        RecvTimeoutError::Timeout => TryRecvError::Empty,
                        RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
                    })
                } else {
                    self.receiver.try_recv()
                };
                let Ok(job) = next else { break };
                let job = self.taken(job);
                if images + job.images > self.limits.max_batch {
                    carried = Some(job);
                    break;
                }
                images += job.images;
                jobs.push(job);
            }
            expected = images;
            self.run_batch(jobs, images);
        }
    }

    /// A job off the queue.
    fn taken(&self, job: Job) -> Job {
        self.queued.dec();
        job
    }

    fn run_batch(&mut self, mut jobs: Vec<Job>, images: usize) {
        self.metrics.observe_batch(&self.model, images);
        let input: &[f32] = if jobs.len() == 1 {
            &jobs[0].input
        } else {
            self.batch.clear();
            for job in &jobs {
                self.batch.extend_from_slice(&job.input);
            }
            &self.batch
        };
        debug_assert_eq!(input.len(), images * self.floats_per_image);
        match self.network.forward(input, &mut self.workspace) {
            Ok(logits) => {
                let mut rows = logits.chunks_exact(self.classes);
                for job in jobs.drain(..) {
                    let own: Vec<f32> = rows.by_ref().take(job.images).flatten().copied().collect();
                    // The client may have gone; its answer is then dropped, nobody else's.
                    let _ = job.reply.send(Ok(own));
                }
            }
            Err(error) => {
                tracing::error!(model = %self.model, %error, "forward pass failed");
                for job in jobs.drain(..) {
                    let _ = job
                        .reply
                        .send(Err(RequestError::Internal(error.to_string())));
                }
            }
        }
    }
}
