//! Warnings about refused requests, throttled: a flood of bad requests must not become a
//! flood of log lines. In each ten-second window the first few are logged one by one; the
//! rest are counted and summarised in one line when the next window begins. (`nmt status`
//! counts every one.)

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a window lasts.
const WINDOW: Duration = Duration::from_secs(10);
/// How many are logged one by one in a window.
const EACH: u32 = 5;

/// One kind of warning, throttled.
pub struct Throttle {
    /// What is refused, in words, for the summary ("install reports refused").
    what: &'static str,
    window: Mutex<Window>,
}

struct Window {
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl Throttle {
    /// A throttle for warnings about `what`.
    pub const fn new(what: &'static str) -> Throttle {
        Throttle {
            what,
            window: Mutex::new(Window {
                started: None,
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether to log this one; a window that ended with some unlogged is summarised first.
    pub fn allow(&self) -> bool {
        let now = Instant::now();
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        match w.started {
            Some(s) if now.duration_since(s) < WINDOW => {}
            Some(s) => {
                if w.suppressed > 0 {
                    tracing::warn!(
                        "{} more {} in the {} s after {} were not logged one by one",
                        w.suppressed,
                        self.what,
                        now.duration_since(s).as_secs(),
                        EACH
                    );
                }
                *w = Window {
                    started: Some(now),
                    logged: 0,
                    suppressed: 0,
                };
            }
            None => w.started = Some(now),
        }
        if w.logged < EACH {
            w.logged += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_a_few_then_counts() {
        let t = Throttle::new("tests");
        let allowed = (0..1000).filter(|_| t.allow()).count();
        assert_eq!(allowed, EACH as usize);
        assert_eq!(t.window.lock().unwrap().suppressed, 1000 - u64::from(EACH));
    }
}
