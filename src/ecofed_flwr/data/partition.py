"""Split sample indices across federated clients (IID, Dirichlet, label shards).

All functions work on label arrays and return index arrays, so the same partition can be
applied to images, to cached activations or to anything else aligned with the labels.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .errors import DataError, check_int

__all__ = [
    "PARTITION_DRAWS",
    "PARTITIONINGS",
    "DEFAULT_ALPHA",
    "DEFAULT_CLASSES_PER_PARTITION",
    "draw_partition",
    "partition_indices",
    "parse_partitioning",
    "train_test_split_indices",
]

PARTITIONINGS = ("iid", "dirichlet", "shards")
#: How client partitions are made: ``disjoint`` (:func:`partition_indices`: a split of the
#: data set), ``with-replacement`` (:func:`draw_partition`: each drawn on its own, so a
#: federation may hold more devices than samples), ``auto`` (disjoint while every partition
#: can get a sample of its own, else with replacement).
PARTITION_DRAWS = ("auto", "disjoint", "with-replacement")
_DRAW_STREAM = 7
DEFAULT_ALPHA = 0.5
DEFAULT_CLASSES_PER_PARTITION = 2
_IPF_ITERATIONS = 200


def _iid(labels: np.ndarray, num_partitions: int, seed: int) -> list[np.ndarray]:
    # numpy, not IidPartitioner: that one takes contiguous shards of an unshuffled data set
    # (FederatedDataset shuffles first), so a seeded permutation + array_split is the same.
    perm = np.random.default_rng(seed).permutation(len(labels))
    return list(np.array_split(perm, num_partitions))


def _dirichlet(
    labels: np.ndarray, num_partitions: int, alpha: float, seed: int, min_partition_size: int
) -> list[np.ndarray]:
    from datasets import Dataset
    from flwr_datasets.partitioner import DirichletPartitioner

    # The idx column carries the original positions through the partitioner's select().
    # Arrow format: in datasets 4 a column of a numpy- or python-formatted Dataset converts
    # row by row (about 15 s for 60,000 labels); Arrow columns convert at once.
    table = Dataset.from_dict(
        {"label": labels, "idx": np.arange(len(labels), dtype=np.int64)}
    ).with_format("arrow")
    partitioner = DirichletPartitioner(
        num_partitions=num_partitions,
        partition_by="label",
        alpha=float(alpha),
        min_partition_size=min_partition_size,
        self_balancing=False,
        shuffle=False,
        seed=seed,
    )
    partitioner.dataset = table
    try:
        with warnings.catch_warnings():
            # It warns on every failed draw before its bounded retry gives up (10 retries).
            warnings.simplefilter("ignore", UserWarning)
            return [
                np.asarray(partitioner.load_partition(i)["idx"].to_numpy(), dtype=np.int64)
                for i in range(num_partitions)
            ]
    except ValueError as exc:
        raise DataError(
            f"Dirichlet partitioning (alpha={alpha}) could not give each of the "
            f"{num_partitions} partitions at least {min_partition_size} samples after "
            f"repeated draws ({exc}); raise alpha, lower min_partition_size or use fewer "
            "partitions"
        ) from exc


def _shards(
    labels: np.ndarray, num_partitions: int, classes_per_partition: int, seed: int
) -> list[np.ndarray]:
    # numpy, not flwr_datasets: ShardPartitioner's label-sorted shards can straddle class
    # boundaries (more than k classes per client) and PathologicalPartitioner either ignores
    # the seed ("deterministic") or gives very unequal sizes ("random").
    rng = np.random.default_rng(seed)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    num_classes = len(classes)
    k = min(classes_per_partition, num_classes)

    # 1. How many partitions share each class: one slot per class first (so every class is
    #    used when there are enough slots; else the largest classes), then D'Hondt
    #    apportionment of the other P*k slots by class size, so shards come out alike.
    cap = np.minimum(num_partitions, counts)
    slots = num_partitions * k
    tie = rng.random(num_classes)
    usage = np.zeros(num_classes, dtype=np.int64)
    usage[np.lexsort((tie, counts))[::-1][:slots]] = 1
    for _ in range(slots - int(usage.sum())):
        open_ = usage < cap
        if not open_.any():
            break
        score = np.where(open_, counts / (usage + 1), -1.0)
        usage[np.lexsort((tie, score))[-1]] += 1

    # 2. Which classes each partition holds: distinct classes with the most slots left
    #    (random among ties). Largest-first keeps it feasible, as no class has more slots
    #    left than partitions left; when capped classes leave fewer than P*k slots, they
    #    are dealt out evenly rather than leaving the last partitions empty.
    remaining = usage.copy()
    members: list[np.ndarray] = []
    for p in range(num_partitions):
        take = min(k, -(-int(remaining.sum()) // (num_partitions - p)))
        order = np.lexsort((rng.random(num_classes), -remaining))[:take]
        chosen = order[remaining[order] > 0]
        remaining[chosen] -= 1
        members.append(chosen)

    # 3. How many samples of a class go to each holder: iterative proportional fitting
    #    towards equal partition totals, ending on the class sums so no sample is lost.
    support = np.zeros((num_classes, num_partitions), dtype=bool)
    for p, chosen in enumerate(members):
        support[chosen, p] = True
    used = usage > 0
    share = support * (counts / np.maximum(usage, 1))[:, None]
    target = counts[used].sum() / num_partitions
    for _ in range(_IPF_ITERATIONS):
        col = share.sum(axis=0)
        if np.abs(col - target).max() < 0.5:
            break
        share *= np.where(col > 0, target / np.where(col > 0, col, 1.0), 0.0)[None, :]
        row = share.sum(axis=1)
        share *= np.where(row > 0, counts / np.where(row > 0, row, 1.0), 0.0)[:, None]

    parts: list[list[np.ndarray]] = [[] for _ in range(num_partitions)]
    for c in np.flatnonzero(used):
        holders = np.flatnonzero(support[c])
        # One sample per holder first (usage <= count), so no assigned shard rounds to
        # zero; the rest follows the fitted shares, leftovers by largest remainder.
        extra = np.clip(share[c, holders] - 1.0, 0.0, None)
        rest = int(counts[c]) - len(holders)
        total = extra.sum()
        exact = extra * (rest / total) if total > 0 else np.full(len(holders), rest / len(holders))
        sizes = np.floor(exact).astype(np.int64)
        short = rest - int(sizes.sum())
        if short > 0:
            sizes[np.argsort(-(exact - sizes), kind="stable")[:short]] += 1
        sizes += 1
        pool = rng.permutation(np.flatnonzero(inverse == c))
        for holder, piece in zip(holders, np.split(pool, np.cumsum(sizes)[:-1]), strict=True):
            parts[holder].append(piece)
    return [np.concatenate(p) if p else np.empty(0, dtype=np.int64) for p in parts]


def partition_indices(
    labels: np.ndarray,
    num_partitions: int,
    scheme: str = "iid",
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    classes_per_partition: int = DEFAULT_CLASSES_PER_PARTITION,
    min_partition_size: int = 1,
) -> list[np.ndarray]:
    """Split sample positions ``0..N-1`` into ``num_partitions`` disjoint client partitions.

    Parameters
    ----------
    labels : numpy.ndarray
        1-D integer class labels of the ``N`` samples.
    num_partitions : int
        Number of clients, between 1 and ``N``.
    scheme : {"iid", "dirichlet", "shards"}
        ``"iid"``: a seeded shuffle split into equal parts (sizes differ by at most one).
        ``"dirichlet"``: each class is divided among the partitions in Dirichlet(alpha)
        proportions (flwr_datasets ``DirichletPartitioner``); small alpha means strong
        label skew. Draws are repeated a bounded number of times until every partition
        has ``min_partition_size`` samples. ``"shards"``: every partition holds samples of
        at most ``classes_per_partition`` classes (label shards, as in the EcoFed paper).
    seed : int, default 0
        Non-negative seed; equal seeds give equal partitions.
    alpha : float, default 0.5
        Dirichlet concentration (> 0); only for ``"dirichlet"``.
    classes_per_partition : int, default 2
        Classes per partition (>= 1); only for ``"shards"``.
    min_partition_size : int, default 1
        Smallest allowed partition (>= 0), checked for every scheme.

    Returns
    -------
    list of numpy.ndarray
        ``num_partitions`` sorted ``int64`` index arrays, pairwise disjoint. They cover all
        ``N`` samples for ``"iid"`` and ``"dirichlet"``, and for ``"shards"`` whenever
        ``num_partitions * classes_per_partition`` is at least the number of classes
        (otherwise the classes left without a slot are dropped).

    Raises
    ------
    DataError
        On bad arguments, or when ``min_partition_size`` cannot be met.

    Notes
    -----
    ``"shards"`` spreads each class over about ``num_partitions * classes_per_partition /
    num_classes`` partitions (more for larger classes) and then sizes each class's pieces
    so that partition totals are as equal as the class constraint allows: exactly equal
    (within one sample) when classes are balanced and ``num_partitions *
    classes_per_partition`` is a multiple of the number of classes; otherwise some
    imbalance is unavoidable without dropping samples, and none are dropped.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"labels must be a 1-D integer array, got dtype {labels.dtype} and shape {labels.shape}"
        )
    n = len(labels)
    if n == 0:
        raise DataError("cannot partition an empty label array")
    if not isinstance(scheme, str) or scheme not in PARTITIONINGS:
        raise DataError(
            f"unknown partitioning scheme {scheme!r}; valid: {', '.join(PARTITIONINGS)}"
        )
    num_partitions = check_int("num_partitions", num_partitions, 1)
    if num_partitions > n:
        raise DataError(f"num_partitions={num_partitions} exceeds the {n} samples available")
    seed = check_int("seed", seed, 0)
    min_partition_size = check_int("min_partition_size", min_partition_size, 0)
    if num_partitions * min_partition_size > n:
        raise DataError(
            f"{num_partitions} partitions of at least {min_partition_size} samples need "
            f"{num_partitions * min_partition_size} samples, only {n} are available"
        )

    if scheme == "iid":
        parts = _iid(labels, num_partitions, seed)
    elif scheme == "dirichlet":
        if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.floating):
            raise DataError(f"alpha must be a number, got {alpha!r}")
        if not (math.isfinite(alpha) and alpha > 0):
            raise DataError(f"alpha must be a finite number > 0, got {alpha}")
        parts = _dirichlet(labels, num_partitions, float(alpha), seed, min_partition_size)
    else:
        k = check_int("classes_per_partition", classes_per_partition, 1)
        parts = _shards(labels, num_partitions, k, seed)

    sizes = [len(p) for p in parts]
    if min(sizes) < min_partition_size:
        raise DataError(
            f"{scheme} partitioning left a partition with {min(sizes)} samples, fewer than "
            f"min_partition_size={min_partition_size}; use fewer partitions"
            + (" or more classes per partition" if scheme == "shards" else "")
        )
    return [np.sort(p).astype(np.int64, copy=False) for p in parts]


def draw_partition(
    labels: np.ndarray,
    partition_id: int,
    size: int,
    scheme: str = "iid",
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    classes_per_partition: int = DEFAULT_CLASSES_PER_PARTITION,
) -> np.ndarray:
    """One client partition drawn on its own: ``size`` distinct samples, seeded by
    ``(seed, partition_id)``; different partitions may share samples.

    For federations with more devices than a data set has samples (or than disjoint
    partitions of the wanted size allow): partition ``i`` costs the same whether there are
    ten partitions or a million, and is the same whatever their number.

    Parameters
    ----------
    labels : numpy.ndarray
        1-D integer class labels of the ``N`` samples.
    partition_id : int
        The partition (>= 0).
    size : int
        Samples in the partition, between 1 and ``N``.
    scheme : {"iid", "dirichlet", "shards"}
        ``"iid"``: a uniform draw. ``"dirichlet"``: class proportions drawn from
        Dirichlet(alpha), then each class's samples drawn from that class. ``"shards"``:
        ``classes_per_partition`` classes drawn, the samples split evenly among them.

    Returns
    -------
    numpy.ndarray
        Sorted ``int64`` positions, no position twice.

    Raises
    ------
    DataError
        On bad arguments.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or not len(labels):
        raise DataError(f"labels must be a non-empty 1-D integer array, got {labels.shape}")
    n = len(labels)
    partition_id = check_int("partition_id", partition_id, 0)
    size = check_int("size", size, 1)
    if size > n:
        raise DataError(f"a partition of {size} samples is larger than the {n} available")
    if scheme not in PARTITIONINGS:
        raise DataError(f"unknown partitioning scheme {scheme!r}; valid: {PARTITIONINGS}")
    rng = np.random.default_rng([check_int("seed", seed, 0), _DRAW_STREAM, partition_id])
    if scheme == "iid":
        return np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)
    classes, class_of = np.unique(labels, return_inverse=True)
    pools = [np.flatnonzero(class_of == c) for c in range(len(classes))]
    if scheme == "dirichlet":
        weights = rng.dirichlet(np.full(len(classes), float(alpha)))
    else:
        k = min(check_int("classes_per_partition", classes_per_partition, 1), len(classes))
        weights = np.zeros(len(classes))
        weights[rng.choice(len(classes), size=k, replace=False)] = 1.0 / k
    counts = rng.multinomial(size, weights)
    # A class asked for more than it holds gives its excess to the classes with room left.
    capacity = np.array([len(p) for p in pools])
    excess = int(np.maximum(counts - capacity, 0).sum())
    counts = np.minimum(counts, capacity)
    while excess:
        room = np.flatnonzero(counts < capacity)
        c = int(rng.choice(room))
        take = min(excess, int(capacity[c] - counts[c]))
        counts[c] += take
        excess -= take
    picked = [
        rng.choice(pool, size=int(m), replace=False)
        for pool, m in zip(pools, counts, strict=True)
        if m
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def parse_partitioning(spec: str) -> dict[str, Any]:
    """Parse a partitioning spec string into keyword arguments for :func:`partition_indices`.

    Parameters
    ----------
    spec : str
        ``"iid"``, ``"dirichlet"``, ``"dirichlet:<alpha>"``, ``"shards"`` or
        ``"shards:<classes per partition>"`` (case-insensitive).

    Returns
    -------
    dict
        ``{"scheme": "iid"}``, ``{"scheme": "dirichlet", "alpha": float}`` or
        ``{"scheme": "shards", "classes_per_partition": int}``; omitted parameters take the
        defaults (alpha 0.5, 2 classes).

    Raises
    ------
    DataError
        For an unknown scheme or a malformed / out-of-range parameter.
    """
    if not isinstance(spec, str):
        raise DataError(f"partitioning spec must be a string, got {spec!r}")
    scheme, sep, arg = spec.strip().lower().partition(":")
    scheme, arg = scheme.strip(), arg.strip()
    hint = "expected iid, dirichlet[:alpha] or shards[:classes_per_partition]"
    if scheme not in PARTITIONINGS:
        raise DataError(f"unknown partitioning {spec!r}; {hint}")
    if sep and not arg:
        raise DataError(f"partitioning {spec!r} has an empty parameter; {hint}")
    if scheme == "iid":
        if sep:
            raise DataError(f"partitioning 'iid' takes no parameter, got {spec!r}")
        return {"scheme": "iid"}
    if scheme == "dirichlet":
        alpha = DEFAULT_ALPHA
        if sep:
            try:
                alpha = float(arg)
            except ValueError:
                raise DataError(f"bad Dirichlet alpha in {spec!r}; {hint}") from None
            if not (math.isfinite(alpha) and alpha > 0):
                raise DataError(f"Dirichlet alpha must be a finite number > 0, got {spec!r}")
        return {"scheme": "dirichlet", "alpha": alpha}
    classes = DEFAULT_CLASSES_PER_PARTITION
    if sep:
        try:
            classes = int(arg)
        except ValueError:
            raise DataError(f"bad classes per partition in {spec!r}; {hint}") from None
        if classes < 1:
            raise DataError(f"classes per partition must be >= 1, got {spec!r}")
    return {"scheme": "shards", "classes_per_partition": classes}


def train_test_split_indices(
    num_samples: int, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``0..num_samples-1`` into local train and test positions.

    Parameters
    ----------
    num_samples : int
        Size of the (client's) data set, >= 1.
    test_fraction : float
        Share held out for testing, in ``[0, 1)``. A positive fraction holds out at least
        one sample as long as one remains for training.
    seed : int
        Non-negative seed (e.g. base seed plus client id).

    Returns
    -------
    tuple of numpy.ndarray
        ``(train, test)``: sorted, disjoint ``int64`` arrays that together cover every
        position.

    Raises
    ------
    DataError
        On bad arguments.
    """
    n = check_int("num_samples", num_samples, 1)
    seed = check_int("seed", seed, 0)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, int | float | np.floating):
        raise DataError(f"test_fraction must be a number, got {test_fraction!r}")
    if not (0.0 <= test_fraction < 1.0):
        raise DataError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    n_test = int(round(n * float(test_fraction)))
    if test_fraction > 0:
        n_test = max(1, n_test)
    n_test = min(n_test, n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]).astype(np.int64), np.sort(perm[:n_test]).astype(np.int64)
