//! Probes: measurements that are not limiters or workloads of their own (CPU steal,
//! entropy, threshold search).
