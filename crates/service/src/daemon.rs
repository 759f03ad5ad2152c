//! The daemon: open the state, serve the control socket and drive a
//! [`Core`] with the system clock until asked to stop.

use crate::config::Config;
use crate::core::{Core, ServiceError, SystemClock};
use crate::notify::Notifier;
use crate::runner::Executor;
use crate::state::{State, StateError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the scheduler looks at the clock and the stop flag.
const TICK: Duration = Duration::from_millis(250);

/// Run the service until `stop` is set: open the state (waiting briefly
/// if a `cairn queue` command holds it), serve the control socket, queue
/// due jobs and run them. On stop, the running job is asked to reach a
/// safe point (its cairn command gets SIGTERM), and `run` returns once it
/// has.
pub fn run(
    config: Config,
    executor: Arc<dyn Executor>,
    notifier: Arc<dyn Notifier>,
    stop: Arc<AtomicBool>,
) -> Result<(), ServiceError> {
    let state_dir = config.state_dir.clone();
    let mut attempts = 0;
    let state = loop {
        match State::open(&state_dir) {
            Ok(s) => break s,
            Err(StateError::InUse(_)) if attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => return Err(e.into()),
        }
    };
    let core = Arc::new(Core::new(
        config,
        state,
        executor,
        notifier,
        Arc::new(SystemClock),
    )?);
    let socket = crate::control::serve(Arc::clone(&core), &state_dir)?;
    tracing::info!(
        "service started: {} jobs, control socket {}",
        core.config().job_names().len(),
        socket.display()
    );
    let runner = {
        let core = Arc::clone(&core);
        std::thread::Builder::new()
            .name("runner".into())
            .spawn(move || {
                while !core.stopping() {
                    match core.run_next() {
                        Ok(Some(_)) => {}
                        Ok(None) => std::thread::sleep(TICK),
                        Err(e) => {
                            tracing::error!("running the queue: {e}");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            })
            .map_err(|e| ServiceError::Remote(format!("starting the runner thread: {e}")))?
    };
    while !stop.load(Ordering::SeqCst) {
        if let Err(e) = core.tick() {
            tracing::error!("scheduling: {e}");
        }
        std::thread::sleep(TICK);
    }
    tracing::info!("stopping: waiting for the running job to reach a safe point");
    core.stop();
    if runner.join().is_err() {
        tracing::error!("the runner thread panicked");
    }
    let _ = std::fs::remove_file(&socket);
    tracing::info!("service stopped");
    Ok(())
}
