//! SIGTERM and SIGINT: the first asks the running operation to stop at a
//! safe point, the second ends the process at once (which the write
//! protocol also survives).

use anyhow::{Context as _, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// A flag that the first SIGTERM or SIGINT sets.
pub fn stop_requested() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        // Order matters: the conditional exit sees the flag as it was
        // before this signal set it.
        flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .context("installing a signal handler")?;
        flag::register(sig, Arc::clone(&stop)).context("installing a signal handler")?;
    }
    Ok(stop)
}
