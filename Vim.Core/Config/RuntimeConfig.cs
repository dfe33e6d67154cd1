namespace Vim.Core.Config;

public sealed class RuntimeConfig
{
    public int Seed { get; set; }

    /// <summary>
    /// Seeds rank r's torch generator with seed + r, as MMEngine's randomness.diff_rank_seed and detectron2 (which seeds
    /// every rank differently): drop-path masks, dropout and RPN/RoI sampling then draw differently on each rank. Off, every
    /// rank draws the same numbers, and a K-rank run equals one process with the whole global batch. The data sampler's
    /// order and the per-sample augmentation seeds never depend on it. Each rank's generator state travels in checkpoints.
    /// </summary>
    public bool DiffRankSeed { get; set; }

    /// <summary>Intra-op threads for libtorch and our kernels; 0 uses every core.</summary>
    public int Threads { get; set; }

    /// <summary>cpu, cuda or cuda:N; resolved by <see cref="Engine.DeviceSelection"/> (under mpirun plain cuda takes local rank mod GPU count).</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>
    /// Mixed precision (autocast) for the training forward pass; off by default (on CPUs it rarely pays). Evaluation,
    /// vim test and vim infer run in float32, as detectron2's and mmseg's evaluations do, so metrics do not depend on it.
    /// </summary>
    public bool Amp { get; set; }

    /// <summary>
    /// bf16 (float32's exponent range: no loss scaling needed) or fp16 (the official detection recipe's, on GPUs
    /// without bf16; trained with <see cref="LossScale"/>).
    /// </summary>
    public string AmpDtype { get; set; } = "bf16";

    /// <summary>
    /// fp16 autocast only: "dynamic" (torch GradScaler's rules, as detectron2's AMPTrainer and mmcv's
    /// <c>fp16 = dict(loss_scale='dynamic')</c>) or a number, a static scale (mmcv's <c>loss_scale=512.</c>).
    /// Steps whose gradients overflow are skipped either way.
    /// </summary>
    public string LossScale { get; set; } = "dynamic";

    /// <summary>
    /// Where the training log goes: local (log.jsonl, required: `vim report` and resumes read it) and optionally tensorboard
    /// (the same scalars and the merged config in TensorBoard event files under work_dir/tensorboard/).
    /// </summary>
    public List<VisBackend> VisBackends { get; set; } = [VisBackend.Local];

    /// <summary>Where logs, checkpoints and reports go; defaults to work_dirs/&lt;config name&gt;.</summary>
    public string? WorkDir { get; set; }

    /// <summary>
    /// Multi-process runs: a collective (all-reduce, broadcast, barrier, gather) that has not completed
    /// after this many seconds aborts the whole job with a message naming it, since a rank that died or
    /// hangs would otherwise block the others forever.
    /// </summary>
    public double CollectiveTimeoutS { get; set; } = 1800;

    /// <summary>Multi-process runs: gradients are averaged in flat buckets of about this many megabytes.</summary>
    public double BucketMb { get; set; } = 25;

    /// <summary>Multi-process runs: auto (NCCL on CUDA where libnccl.so.2 loads, else MPI), mpi, or nccl.</summary>
    public DistBackend DistBackend { get; set; } = DistBackend.Auto;
}
