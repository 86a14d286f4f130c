//! Public front ends. Each translates wire shapes to [`braid_node::Api`] calls and
//! [`braid_types::BraidError`] to wire errors with one exhaustive match; none holds logic of its own.

pub mod grpc;
