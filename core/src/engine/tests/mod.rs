mod dialects;
mod engine;
mod protocol;
