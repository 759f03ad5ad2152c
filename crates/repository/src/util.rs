//! Small helpers shared across modules: who and where we are, and the test
//! failpoints used by the crash-consistency tests.

/// This machine's host name (lossy UTF-8).
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The current user's name, from the environment, or the numeric uid.
pub fn username() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(name) = std::env::var(var)
            && !name.is_empty()
        {
            return name;
        }
    }
    #[allow(unsafe_code)]
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    uid.to_string()
}

/// Crash-consistency tests kill the process at named points in the write
/// protocol: when `CAIRN_FAILPOINT` equals `name`, the process sends itself
/// SIGKILL, exactly as an operator's `kill -9` or a power loss would stop it
/// (no destructors, no flushing). The variable is read once; with it unset
/// this is a single atomic load.
pub fn failpoint(name: &str) {
    use std::sync::OnceLock;
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("CAIRN_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        tracing::warn!("failpoint {name}: killing the process");
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own pid with a valid signal number.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Render bytes as a path-like string for messages (lossy UTF-8).
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
