//! The service's config files and control-socket requests (text someone
//! else may have written): errors, never panics; what parses is valid.
#![no_main]

use cairn_service::Config;
use cairn_service::control::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) = Config::parse(&text) {
        assert!(config.state_dir.is_absolute());
        for name in config.job_names() {
            assert!(config.job(&name).is_some());
        }
    }
    let _ = serde_json::from_slice::<Request>(data);
});
