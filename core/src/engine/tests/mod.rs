mod engine;
mod protocol;
