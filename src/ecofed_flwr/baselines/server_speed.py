"""How long one server SGD step of a back-end would take on a GPU server (an estimate).

No GPU is at hand where the benchmarks run, so the GPU-server column of the time model is
derived from reference figures measured on an NVIDIA H200 (torch 2.11, fp32, eager PyTorch;
``/work/shared/ENVIRONMENT.md``, section GPU) for the paper's VGG-11 back-end trained from
128x8x8 activations: one shared back at batch 200 ran at about 42,000 samples/s and at batch
1,024 at about 145,000 samples/s (per-client copies at batch 10, one after another: about
2,200 samples/s).

Those two shared-back points give a step time ``t(b) = a + c * b``: a fixed cost per step
(``a``, kernel launches and optimizer bookkeeping, which dominates at small batches) and a
cost per sample (``c``, arithmetic). For another back the estimate scales ``a`` by its number
of leaf modules relative to the VGG-11 back (launches grow with layers, not with their size)
and ``c`` by its training FLOPs per sample (forward and backward) relative to the VGG-11
back's. The result is an eager-PyTorch estimate; CUDA graphs or compilation would cut the
fixed cost, larger batches or vmapped copies would amortise it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: H200 reference figures for the VGG-11 back (batch size: samples/s), shared back, fp32.
H200_VGG_BACK_SAMPLES_PER_S: dict[int, float] = {200: 42_000.0, 1024: 145_000.0}
H200_SOURCE = (
    "ENVIRONMENT.md (shared project notes), section GPU: H200, torch 2.11, fp32, the paper's "
    "VGG-11 back from 128x8x8 activations, one shared back at batch 200: about 42,000 "
    "samples/s; at batch 1,024: about 145,000 samples/s"
)


def _vgg_step_fit() -> tuple[float, float]:
    (b1, r1), (b2, r2) = sorted(H200_VGG_BACK_SAMPLES_PER_S.items())
    t1, t2 = b1 / r1, b2 / r2
    per_sample = (t2 - t1) / (b2 - b1)
    return t1 - per_sample * b1, per_sample


def leaf_modules(module: nn.Module) -> int:
    """Modules without children (each launches at least one kernel per pass), less Identity."""
    return sum(
        1 for m in module.modules() if not list(m.children()) and not isinstance(m, nn.Identity)
    )


def training_flops_per_sample(back: nn.Module, activation_shape: tuple[int, ...]) -> float:
    """Forward plus backward FLOPs of one sample through ``back`` (a copy is measured)."""
    probe = copy.deepcopy(back).train()
    x = torch.randn(2, *activation_shape, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        probe(x).sum().backward()
    return counter.get_total_flops() / 2


@dataclass(frozen=True)
class GpuServerModel:
    """Step time ``fixed_seconds + seconds_per_sample * batch`` of one server SGD step.

    Parameters
    ----------
    fixed_seconds : float
        Cost of a step whatever its batch (kernel launches, optimiser bookkeeping).
    seconds_per_sample : float
        Cost of each sample of a step.
    derivation : dict[str, Any]
        How the two figures were obtained (stated in every results document).
    """

    fixed_seconds: float
    seconds_per_sample: float
    derivation: dict[str, Any]

    def step_seconds(self, batch_size: int) -> float:
        """Estimated seconds of one SGD step at ``batch_size``."""
        return self.fixed_seconds + self.seconds_per_sample * max(batch_size, 0)

    def samples_per_second(self, batch_size: int) -> float:
        """Estimated training throughput at ``batch_size``."""
        return batch_size / self.step_seconds(batch_size)

    def describe(self) -> dict[str, Any]:
        """The model and its derivation, for the results document."""
        return {
            "fixed_seconds_per_step": self.fixed_seconds,
            "seconds_per_sample": self.seconds_per_sample,
            "samples_per_second": {b: self.samples_per_second(b) for b in (10, 32, 64, 256)},
            **self.derivation,
        }

    @classmethod
    def h200_for(
        cls,
        back: nn.Module,
        activation_shape: tuple[int, ...],
        reference_back: nn.Module,
        reference_shape: tuple[int, ...],
    ) -> GpuServerModel:
        """The H200 estimate for ``back``, scaled from ``reference_back`` (the VGG-11 back).

        See the module's docstring for the scaling.
        """
        fixed, per_sample = _vgg_step_fit()
        modules = leaf_modules(back) / leaf_modules(reference_back)
        flops = training_flops_per_sample(back, activation_shape) / training_flops_per_sample(
            reference_back, reference_shape
        )
        return cls(
            fixed_seconds=fixed * modules,
            seconds_per_sample=per_sample * flops,
            derivation={
                "source": H200_SOURCE,
                "reference_fixed_seconds_per_step": fixed,
                "reference_seconds_per_sample": per_sample,
                "leaf_module_ratio": modules,
                "training_flops_ratio": flops,
                "scaling": (
                    "fixed cost per step x (leaf modules of this back / of the VGG-11 back); "
                    "cost per sample x (training FLOPs per sample, this back / VGG-11 back)"
                ),
            },
        )
