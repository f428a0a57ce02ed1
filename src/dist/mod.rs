//! Data-parallel training on libtorch's c10d (the engine under `torch.distributed` and
//! DDP), which tch does not wrap: where this process stands in a group (`world`, from
//! torchrun's, srun's or `runner launch`'s environment), joining it with the ranks agreeing
//! on what they run (`rendezvous`), the collectives (`group`, over `csrc/c10d.cpp`),
//! BatchNorm synchronised over the group (`sync_bn`), and starting a local group of
//! processes (`launch`).
mod group;
pub mod launch;
mod rendezvous;
pub mod sync_bn;
mod world;

pub use group::{Backend, ProcessGroup, Reduce, BUCKET_BYTES};
pub use rendezvous::{join, Joined};
pub use world::{slurm_port, World, DEFAULT_TIMEOUT};
