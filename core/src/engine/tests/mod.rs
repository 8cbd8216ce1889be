mod dialects;
mod engine;
mod protocol;
mod snapshot;
