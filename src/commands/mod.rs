//! The one-shot commands of the command line (`check`, `inspect`) and `demo`.

pub mod check;
pub mod demo;
pub mod inspect;
