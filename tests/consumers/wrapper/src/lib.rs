//! A framework over `regnet`: its users depend on this crate only, and its `network!` forwards to
//! `regnet!`, saying where the `regnet` crate is with `crate = ...`.

pub use regnet;

/// `regnet!` for crates that depend on this one only.
#[macro_export]
macro_rules! network {
    ($($input:tt)*) => {
        $crate::regnet::regnet!($($input)*, crate = $crate::regnet);
    };
}
