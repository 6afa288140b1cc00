//! Counting limits over a fixed window, per key: failed sign-ins and bearer tokens per
//! client address, and searches that could walk around the masking per account.
//!
//! Failures are counted only when they happen, and a caller past the limit is refused
//! before anything is tried again, which needs a limiter that can be asked without
//! counting; hence this small one rather than a general rate-limiting crate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `max` hits per key in a window of `window`; past that, the key is refused until
/// the window ends.
pub struct WindowLimiter {
    max: u32,
    window: Duration,
    state: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Keys kept before expired ones are swept out.
const MAX_KEYS: usize = 50_000;

impl WindowLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// How long the key must wait, when it is past the limit now. Counts nothing.
    pub fn blocked(&self, key: &str) -> Option<Duration> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (start, n) = state.get(key)?;
        let left = self.window.checked_sub(start.elapsed())?;
        (*n >= self.max).then_some(left.max(Duration::from_secs(1)))
    }

    /// Counts one hit; answers how long the key must wait when this hit went past the limit.
    pub fn hit(&self, key: &str) -> Option<Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.len() >= MAX_KEYS {
            let window = self.window;
            state.retain(|_, (start, _)| start.elapsed() < window);
            if state.len() >= MAX_KEYS {
                state.clear();
            }
        }
        let now = Instant::now();
        let entry = state.entry(key.to_string()).or_insert((now, 0));
        if entry.0.elapsed() >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 > self.max {
            let left = self.window.saturating_sub(entry.0.elapsed());
            Some(left.max(Duration::from_secs(1)))
        } else {
            None
        }
    }

    /// Forgets a key (an administrator's unlock, or a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// The limits of one service instance.
pub struct Limits {
    /// Failed sign-ins and failed bearer tokens, per client address.
    pub auth_failures: WindowLimiter,
    /// Searches of the party registry by phone or ID number, per account.
    pub sensitive_search: WindowLimiter,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            auth_failures: WindowLimiter::new(20, Duration::from_secs(300)),
            sensitive_search: WindowLimiter::new(30, Duration::from_secs(600)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_past_the_limit_waits_for_the_window() {
        let l = WindowLimiter::new(3, Duration::from_millis(200));
        assert!(l.blocked("a").is_none());
        for _ in 0..3 {
            assert!(l.hit("a").is_none());
        }
        assert!(l.blocked("a").is_some());
        assert!(l.hit("a").is_some());
        assert!(l.blocked("b").is_none(), "other keys are not affected");
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.blocked("a").is_none());
        assert!(l.hit("a").is_none());
        l.clear("a");
        assert!(l.blocked("a").is_none());
    }
}
