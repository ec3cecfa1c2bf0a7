//! The Fibonacci step: one wrapping addition in a chain where each step depends on the
//! last, as in Indeed's Fibtest (`c = a + b; a = b; b = c`). The compiler cannot fold
//! the chain, and `black_box` at the end of each batch keeps the result alive without
//! putting anything inside the loop.

use std::hint::black_box;

/// The two most recent Fibonacci numbers (mod 2^64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fib {
    pub a: u64,
    pub b: u64,
}

impl Default for Fib {
    fn default() -> Fib {
        Fib { a: 0, b: 1 }
    }
}

impl Fib {
    /// Advance `n` steps.
    #[inline]
    pub fn steps(&mut self, n: u64) {
        // black_box on the inputs stops the compiler from evaluating the whole batch at
        // compile time when `self` is known; on the outputs, from dropping unused work.
        let (mut a, mut b) = (black_box(self.a), black_box(self.b));
        for _ in 0..black_box(n) {
            let c = a.wrapping_add(b);
            a = b;
            b = c;
        }
        self.a = black_box(a);
        self.b = black_box(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_fibonacci_numbers() {
        let mut f = Fib::default();
        f.steps(10);
        assert_eq!((f.a, f.b), (55, 89));
        f.steps(0);
        assert_eq!(f.a, 55);
    }

    #[test]
    fn wraps_instead_of_overflowing() {
        let mut f = Fib::default();
        f.steps(200);
        let mut g = Fib::default();
        for _ in 0..200 {
            g.steps(1);
        }
        assert_eq!(f, g);
    }
}
