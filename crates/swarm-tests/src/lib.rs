//! No code: the swarm's integration tests with a real gateway and a real nginx origin
//! (`tests/swarm.rs`) live in a crate of their own, so that the swarm library depends on
//! neither the gateway's server nor its database, not even for its tests.
