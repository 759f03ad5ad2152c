//! Small helpers shared across modules: who and where we are, and the test
//! failpoints used by the crash-consistency tests.

/// This machine's host name (lossy UTF-8).
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The current user's name: from the environment, else the name
/// `/etc/passwd` gives the uid, else the numeric uid.
pub fn username() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(name) = std::env::var(var)
            && !name.is_empty()
        {
            return name;
        }
    }
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| user_of(&text, uid))
        .unwrap_or_else(|| uid.to_string())
}

/// The name of `uid` in a passwd(5) file.
fn user_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let id: u32 = fields.next()?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// Crash-consistency tests kill the process at named points in the write
/// protocol: when `CAIRN_FAILPOINT` equals `name`, the process sends itself
/// SIGKILL, exactly as an operator's `kill -9` or a power loss would stop it
/// (no destructors, no flushing). With `CAIRN_FAILPOINT_PAUSE_MS` also set,
/// it sleeps that long instead (so a test can observe the repository while
/// an operation is in flight). The variables are read once; unset, this is
/// a single atomic load.
pub fn failpoint(name: &str) {
    use std::sync::OnceLock;
    static ARMED: OnceLock<(Option<String>, Option<u64>)> = OnceLock::new();
    let (armed, pause) = ARMED.get_or_init(|| {
        (
            std::env::var("CAIRN_FAILPOINT").ok(),
            std::env::var("CAIRN_FAILPOINT_PAUSE_MS")
                .ok()
                .and_then(|v| v.parse().ok()),
        )
    });
    if armed.as_deref() != Some(name) {
        return;
    }
    if let Some(ms) = pause {
        tracing::warn!("failpoint {name}: pausing {ms} ms");
        std::thread::sleep(std::time::Duration::from_millis(*ms));
        return;
    }
    {
        tracing::warn!("failpoint {name}: killing the process");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

/// Render bytes as a path-like string for messages (lossy UTF-8).
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_is_named_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\npostgres:x:102:105::/var/lib/postgresql:/bin/sh\n";
        assert_eq!(user_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_of(passwd, 102).as_deref(), Some("postgres"));
        assert_eq!(user_of(passwd, 7), None);
    }
}
