//! The worker pool every parallel operation runs on.
//!
//! (Skeleton: filled in by the ops work.)
