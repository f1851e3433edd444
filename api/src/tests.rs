//! Wire fixtures, error bodies, routes, and the client against real HTTP
//! servers on loopback.

mod client;
mod wire;
