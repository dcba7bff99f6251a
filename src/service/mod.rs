//! The long-running exporter: the app (config, reload, shared state), the scheduler of
//! domain loops and probes, and the on-demand `/probe`.

pub mod app;
pub mod probe;
pub mod reports;
pub mod scheduler;
