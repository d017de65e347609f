//! Retry timing: jitter and capped exponential backoff (pure functions).

use std::time::Duration;

/// `d` scaled by a random factor in `[1 - f, 1 + f)`.
///
/// `f` is clamped to `[0, 1]`; `f <= 0` (or NaN) returns `d` unchanged.
pub fn jitter(d: Duration, f: f64) -> Duration {
    if f.is_nan() || f <= 0.0 {
        return d;
    }
    let f = f.min(1.0);
    let multiplier = 1.0 + (fastrand::f64() * 2.0 - 1.0) * f;
    Duration::try_from_secs_f64(d.as_secs_f64() * multiplier).unwrap_or(Duration::MAX)
}

/// `min(base * 2^attempt, max)` with +-25% jitter; a negative `attempt`
/// counts as 0. With `base` 1 s: attempt 0 -> 1 s, 1 -> 2 s, 2 -> 4 s, ...
pub fn exponential_backoff(attempt: i32, base: Duration, max: Duration) -> Duration {
    let attempt = attempt.max(0).unsigned_abs();
    let factor = 2u32.saturating_pow(attempt);
    jitter(base.saturating_mul(factor).min(max), 0.25)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let d = Duration::from_secs(10);
        for _ in 0..1_000 {
            let j = secs(jitter(d, 0.1));
            assert!((9.0..11.0).contains(&j), "{j}");
            let j = secs(jitter(d, 0.5));
            assert!((5.0..15.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn jitter_without_fraction_returns_the_duration() {
        let d = Duration::from_millis(1234);
        assert_eq!(jitter(d, 0.0), d);
        assert_eq!(jitter(d, -1.0), d);
        assert_eq!(jitter(d, f64::NAN), d);
    }

    #[test]
    fn jitter_fraction_is_clamped_to_one() {
        let d = Duration::from_secs(1);
        for _ in 0..1_000 {
            let j = secs(jitter(d, 5.0));
            assert!((0.0..2.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn exponential_backoff_doubles_until_capped() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        let cases: [(i32, f64, f64); 9] = [
            (0, 0.75, 1.25),
            (1, 1.5, 2.5),
            (2, 3.0, 5.0),
            (3, 6.0, 10.0),
            (4, 12.0, 20.0),
            (5, 24.0, 40.0),
            (6, 45.0, 75.0),
            (10, 45.0, 75.0),
            (-5, 0.75, 1.25),
        ];
        for (attempt, lo, hi) in cases {
            for _ in 0..200 {
                let d = secs(exponential_backoff(attempt, base, max));
                assert!(d >= lo && d <= hi, "attempt {attempt}: {d} not in [{lo},{hi}]");
            }
        }
    }

    #[test]
    fn exponential_backoff_survives_huge_attempts() {
        let d = exponential_backoff(i32::MAX, Duration::from_secs(1), Duration::from_secs(5));
        assert!(secs(d) <= 6.25);
    }
}
