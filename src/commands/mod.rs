//! The one-shot commands of the command line (`check`, `inspect`, `report`) and `demo`.

pub mod check;
pub mod demo;
pub mod inspect;
pub mod report;
