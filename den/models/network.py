"""A multi-head network whose hidden units can be appended, duplicated and deleted.

Every strategy uses :class:`MultiHeadNet`: a trunk of hidden layers (convolutions first, then
fully connected layers) shared by all tasks, and one linear output head per task. Each hidden
unit (a neuron, or a filter of a convolution) carries the task at which it was created in
``unit_timestamps``. New units are always appended at the end of their layer, so the units a
task may use form a prefix of every layer: the forward pass for task t slices
``W_l[:n_l(t), :n_{l-1}(t)]`` (DEN's timestamped inference, Sec. 3.4 of the paper). For a
strategy that never grows the network every unit has timestamp 0 and no slicing happens.

Shapes: hidden layer l has ``widths[l]`` units. A linear layer's weight is
[n_l, n_{l-1} * block_l], where ``block_l`` is the spatial size (H*W) of the feature map when
the layer follows a convolution (flattening is channel-major, so the inputs of one filter form
one contiguous block of columns) and 1 otherwise. A conv weight is [n_l, n_{l-1}, k, k].
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from den.config.schema import ModelConfig
from den.errors import ConfigError


class MultiHeadNet(nn.Module):
    """Hidden layers shared by all tasks plus one output head per task.

    Args:
        input_shape: (C, H, W) of one example.
        conv_channels: filters of each convolution layer (may be empty).
        hidden: units of each fully connected hidden layer (may be empty).
        kernel_size: square kernel of every conv ("same" padding).
        pool: max-pool size after each conv, one int for all or one per conv layer (1 = none).
        init: ``default`` (PyTorch's) or ``truncated_normal`` (std 0.01).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        conv_channels: Sequence[int] = (),
        hidden: Sequence[int] = (312, 128),
        kernel_size: int = 5,
        pool: int | Sequence[int] = 2,
        init: str = "default",
    ) -> None:
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.kernel_size = kernel_size
        self.config_widths = [int(n) for n in (*conv_channels, *hidden)]
        # whether the layers may hold more or fewer units than configured (DEN grows them)
        self.growable = False
        self.pools = pools = _pool_sizes(pool, len(conv_channels))
        self.init = init
        self.kinds: list[str] = ["conv"] * len(conv_channels) + ["linear"] * len(hidden)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.head_weights = nn.ParameterList()
        self.head_biases = nn.ParameterList()
        self.unit_timestamps: list[torch.Tensor] = []  # int64 [n_l] on the CPU
        self.in_blocks: list[int] = []  # columns per input unit of each layer
        c, h, w = self.input_shape
        n_in = c
        for layer, n_out in enumerate([*conv_channels, *hidden]):
            if self.kinds[layer] == "conv":
                block = 1
            elif layer == 0:
                n_in, block = 1, c * h * w  # an MLP sees the flattened image as one input block
            else:
                block = h * w if self.kinds[layer - 1] == "conv" else 1
            self.in_blocks.append(block)
            weight, bias = self._new_weights(layer, n_out, n_in)
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(bias))
            self.unit_timestamps.append(torch.zeros(n_out, dtype=torch.int64))
            if self.kinds[layer] == "conv" and pools[layer] > 1:
                h, w = h // pools[layer], w // pools[layer]
                if h < 1 or w < 1:
                    raise ConfigError(
                        "model.conv_channels",
                        list(conv_channels),
                        "too many poolings for the image size",
                        "use fewer conv layers or model.pool=1",
                    )
            n_in = n_out
        if not self.kinds:
            self.head_block = c * h * w
        else:
            self.head_block = h * w if self.kinds[-1] == "conv" else 1
        self._width_cache: dict[int, list[int]] = {}
        # (rows, cols, input_grad_from) per layer while :meth:`frozen_old_units` is active
        self._frozen_blocks: list[tuple[int, int, int]] | None = None

    # ----------------------------------------------------------------- structure
    @property
    def num_layers(self) -> int:
        return len(self.kinds)

    @property
    def num_heads(self) -> int:
        return len(self.head_weights)

    def widths(self) -> list[int]:
        """Current number of units in every hidden layer."""
        return [int(w.shape[0]) for w in self.weights]

    def input_units(self, layer: int) -> int:
        """Number of input units of ``layer`` (units of the layer below, or 1 for a flat input)."""
        if layer == 0:
            return self.input_shape[0] if self.kinds[0] == "conv" else 1
        return int(self.weights[layer - 1].shape[0])

    def widths_at(self, task_id: int) -> list[int]:
        """Units of every hidden layer that task ``task_id`` may use (timestamp <= task_id)."""
        cached = self._width_cache.get(task_id)
        if cached is None:
            cached = [int((ts <= task_id).sum()) for ts in self.unit_timestamps]
            self._width_cache[task_id] = cached
        return cached

    def structure_changed(self) -> None:
        """Call after any change of layer sizes or timestamps."""
        self._width_cache.clear()

    def add_head(self, num_classes: int, task_id: int) -> None:
        """Append the output head of task ``task_id`` (heads are indexed by task id)."""
        if task_id != self.num_heads:
            raise RuntimeError(f"head for task {task_id} added while {self.num_heads} heads exist")
        n_in = (self.widths_at(task_id)[-1] if self.kinds else 1) * self.head_block
        device = self.weights[0].device if self.kinds else torch.device("cpu")
        weight, bias = self._init_tensors((num_classes, n_in), fan_in=n_in, device=device)
        self.head_weights.append(nn.Parameter(weight))
        self.head_biases.append(nn.Parameter(bias))

    def trunk_parameters(self) -> list[nn.Parameter]:
        return [*self.weights, *self.biases]

    def head_parameters(self, task_id: int) -> list[nn.Parameter]:
        return [self.head_weights[task_id], self.head_biases[task_id]]

    def num_parameters(self) -> int:
        """Every stored weight and bias, all heads included."""
        return sum(p.numel() for p in self.parameters())

    def num_parameters_for(self, task_id: int) -> int:
        """Parameters the forward pass of task ``task_id`` touches (its slices and its head)."""
        widths = self.widths_at(task_id)
        total = 0
        for layer, n_out in enumerate(widths):
            n_in = self.input_units(layer) if layer == 0 else widths[layer - 1]
            per_unit = self.weights[layer][0].numel() // max(self.input_units(layer), 1)
            total += n_out * n_in * per_unit + n_out
        return total + sum(p.numel() for p in self.head_parameters(task_id))

    # ----------------------------------------------------------------- growth (DEN)
    def consumer(self, layer: int, task_id: int) -> tuple[nn.ParameterList, int, int]:
        """Where the outputs of ``layer`` go: (parameter list, index, columns per unit).

        The next hidden layer's weight, or, for the last hidden layer, head ``task_id`` (older
        heads never read units created after their task, so they never grow).
        """
        if layer + 1 < self.num_layers:
            return (
                self.weights,
                layer + 1,
                self.in_blocks[layer + 1] if self.kinds[layer + 1] == "linear" else 1,
            )
        return self.head_weights, task_id, self.head_block

    def unit_columns(self, layer: int, units: torch.Tensor, task_id: int) -> torch.Tensor:
        """Column indices, in the consumer of ``layer``, that read ``units`` (int64 [k])."""
        _, _, block = self.consumer(layer, task_id)
        offsets = torch.arange(block, device=units.device)
        return (units[:, None] * block + offsets[None, :]).reshape(-1)

    @torch.no_grad()
    def append_units(
        self,
        layer: int,
        task_id: int,
        rows: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        consumer_columns: torch.Tensor | None = None,
        count: int | None = None,
    ) -> torch.Tensor:
        """Append units with timestamp ``task_id`` to ``layer``; return their indices.

        Args:
            rows: incoming weights of the new units [k, *weight.shape[1:]] (default: fresh
                initialisation with the layer's fan-in); ``count`` gives k when ``rows`` is None.
            bias: [k] (default: fresh initialisation).
            consumer_columns: weights from the new units to the consumer (next layer or head
                ``task_id``), [consumer rows, k * block] (default: fresh initialisation).
        """
        weight = self.weights[layer]
        if rows is None:
            fresh_w, fresh_b = self._init_tensors(
                (count, *weight.shape[1:]), fan_in=weight[0].numel(), device=weight.device
            )
            rows = fresh_w
            bias = fresh_b if bias is None else bias
        k = rows.shape[0]
        if bias is None:
            bias = self._init_tensors(
                (k, *weight.shape[1:]), fan_in=weight[0].numel(), device=weight.device
            )[1]
        start = weight.shape[0]
        self.weights[layer] = nn.Parameter(torch.cat([weight.detach(), rows.to(weight)]))
        self.biases[layer] = nn.Parameter(torch.cat([self.biases[layer].detach(), bias.to(weight)]))
        self.unit_timestamps[layer] = torch.cat(
            [self.unit_timestamps[layer], torch.full((k,), task_id, dtype=torch.int64)]
        )
        plist, index, block = self.consumer(layer, task_id)
        target = plist[index]
        if consumer_columns is None:
            fan_in = target[0].numel() + k * block * (target[0].numel() // max(target.shape[1], 1))
            consumer_columns = self._init_tensors(
                (target.shape[0], k * block, *target.shape[2:]), fan_in=fan_in, device=target.device
            )[0]
        plist[index] = nn.Parameter(
            torch.cat([target.detach(), consumer_columns.to(target)], dim=1)
        )
        self.structure_changed()
        return torch.arange(start, start + k, device=weight.device)

    @torch.no_grad()
    def delete_units(self, layer: int, units: torch.Tensor, task_id: int) -> None:
        """Remove ``units`` of ``layer`` (all created at ``task_id``) and their consumer columns."""
        if units.numel() == 0:
            return
        units = units.to(self.weights[layer].device)
        if bool((self.unit_timestamps[layer][units.cpu()] != task_id).any()):
            raise RuntimeError("only units created by the current task can be deleted")
        keep = torch.ones(self.weights[layer].shape[0], dtype=torch.bool, device=units.device)
        keep[units] = False
        self.weights[layer] = nn.Parameter(self.weights[layer].detach()[keep].clone())
        self.biases[layer] = nn.Parameter(self.biases[layer].detach()[keep].clone())
        self.unit_timestamps[layer] = self.unit_timestamps[layer][keep.cpu()]
        plist, index, _ = self.consumer(layer, task_id)
        cols = self.unit_columns(layer, units, task_id)
        keep_cols = torch.ones(plist[index].shape[1], dtype=torch.bool, device=units.device)
        keep_cols[cols] = False
        plist[index] = nn.Parameter(plist[index].detach()[:, keep_cols].clone())
        self.structure_changed()

    # ----------------------------------------------------------------- forward
    def features(
        self,
        x: torch.Tensor,
        widths: Sequence[int] | None = None,
        weights: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Hidden representation [N, n_L * head_block] using the first ``widths[l]`` units.

        ``weights`` replaces the layers' weights (same shapes), e.g. PackNet's masked copies.
        """
        return self._layers_from(0, self._input(x), widths, weights)

    def _layers_from(
        self,
        start: int,
        h: torch.Tensor,
        widths: Sequence[int] | None,
        weights: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Layers ``start``.. applied to ``h``, the input of layer ``start``; flattened output
        [N, n_L * head_block] (see :meth:`features`)."""
        for layer in range(start, self.num_layers):
            weight, bias = self.sliced(layer, widths, None if weights is None else weights[layer])
            h = self.activation(layer, self.pre_activation(layer, h, weight, bias))
        return h.flatten(1) if h.ndim > 2 else h

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        # NHWC on the CPU: oneDNN's convolutions and max-pooling run 1.3x and 2.6x faster
        # than on NCHW (measured on 2 cores); the flatten at the fully connected boundary
        # still reads channel-major, so the function is unchanged.
        if self.kinds and self.kinds[0] == "conv":
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def first_layer_units(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Outputs of layer 0's units ``start:stop`` for inputs ``x``: [N, stop - start] or
        [N, stop - start, H', W'] (after the activation and pooling)."""
        weight, bias = self.weights[0][start:stop], self.biases[0][start:stop]
        return self.activation(0, self.pre_activation(0, self._input(x), weight, bias))

    def logits_from_old_first_layer(
        self, x: torch.Tensor, first_old: torch.Tensor, task_id: int
    ) -> torch.Tensor:
        """``self(x, task_id)`` with the outputs of layer 0's first ``first_old.shape[1]``
        units given instead of computed (:meth:`first_layer_units` of those units, e.g.
        cached while they are frozen): only layer 0's later units read ``x``. Logits
        [N, C_t]; equal to ``forward`` up to float rounding."""
        widths = self.widths_at(task_id)
        h = first_old
        if widths[0] > first_old.shape[1]:  # layer 0 has units of this task
            h = torch.cat([h, self.first_layer_units(x, first_old.shape[1], widths[0])], 1)
        if h.ndim == 4:  # rows gathered from the cache come back NCHW: channels-last, as in
            h = h.contiguous(memory_format=torch.channels_last)  # forward (see _input)
        return self.head(self._layers_from(1, h, widths), task_id)

    def pre_activation(
        self, layer: int, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``layer``'s affine map of its input ``h`` (conv with "same" padding, or linear on
        the flattened input) with the given weight: [N, n_l, H, W] or [N, n_l]."""
        frozen = self._frozen_blocks[layer] if self._frozen_blocks else None
        frozen = frozen if torch.is_grad_enabled() and weight is self.weights[layer] else None
        if self.kinds[layer] == "conv":
            padding = self.kernel_size // 2
            if frozen:
                return _FrozenBlockConv.apply(h, weight, bias, *frozen, padding)
            return F.conv2d(h, weight, bias, padding=padding)
        h = h.flatten(1) if h.ndim > 2 else h
        if frozen:
            return _FrozenBlockLinear.apply(h, weight, bias, *frozen)
        return F.linear(h, weight, bias)

    @contextlib.contextmanager
    def frozen_old_units(self, task_id: int) -> Iterator[None]:
        """Within: every layer's backward (linear and conv) skips what cannot train when only
        the units of task ``task_id`` learn (DEN's expansion and post-split retrain, whose
        masks freeze every older unit's weights from older inputs and its bias). With ``old``
        the widths of task ``task_id - 1`` (a prefix of every layer), it skips the gradient of
        ``W_l[:old_l, :old_{l-1} * block_l]`` (a conv layer: the old filters' old input
        channels) and ``b_l[:old_l]``, and the input gradient of old units whose own inputs
        are all frozen (layer 0's). Same gradients on every entry the masks let move; the old
        block's weight gradient is 0 instead of a value the mask would zero."""
        old_widths = self.widths_at(task_id - 1)
        blocks = []
        for layer in range(self.num_layers):
            rows = old_widths[layer]
            cols = (self.input_units(layer) if layer == 0 else old_widths[layer - 1]) * (
                self.in_blocks[layer]
            )
            # Old units of layer 0 read only the data: their outputs carry no gradient, so
            # layer 1 needs its input gradient for the new units' columns only.
            blocks.append((rows, cols, cols if layer == 1 else 0))
        self._frozen_blocks = blocks
        try:
            yield
        finally:
            self._frozen_blocks = None

    def activation(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """ReLU, and max-pooling after a conv layer (pooled first: max and ReLU commute, and
        ReLU then runs on a quarter of the values)."""
        if self.kinds[layer] == "conv" and self.pools[layer] > 1:
            z = F.max_pool2d(z, self.pools[layer])
        return F.relu(z)

    def forward(self, x: torch.Tensor, task_id: int) -> torch.Tensor:
        """Logits [N, C_t] of task ``task_id`` for inputs [N, C, H, W], timestamped."""
        widths = self.widths_at(task_id) if self.kinds else None
        return self.head(self.features(x, widths), task_id)

    def head(self, h: torch.Tensor, task_id: int) -> torch.Tensor:
        """Head ``task_id`` on features [N, n_L * head_block]: logits [N, C_t]."""
        return F.linear(h, self.head_weights[task_id], self.head_biases[task_id])

    def sliced(
        self, layer: int, widths: Sequence[int] | None, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias of ``layer`` restricted to the first ``widths`` units (a view);
        ``weight`` replaces the layer's own weight."""
        weight = self.weights[layer] if weight is None else weight
        bias = self.biases[layer]
        if widths is None:
            return weight, bias
        n_out = widths[layer]
        n_in_units = self.input_units(layer) if layer == 0 else widths[layer - 1]
        n_in = n_in_units * self.in_blocks[layer] if self.kinds[layer] == "linear" else n_in_units
        if n_out == weight.shape[0] and n_in == weight.shape[1]:
            return weight, bias  # the common case: no copy, no strided matmul
        # A contiguous copy: the same kernel as the full-size matrix had, so an old task's
        # outputs stay bit-identical after the layer grows (a strided view may not).
        return weight[:n_out, :n_in].contiguous(), bias[:n_out]

    # ----------------------------------------------------------------- init
    def _new_weights(
        self, layer: int, n_out: int, n_in_units: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        shape = self._weight_shape(layer, n_out, n_in_units)
        return self._init_tensors(shape, fan_in=math.prod(shape[1:]))

    def _weight_shape(self, layer: int, n_out: int, n_in_units: int) -> tuple[int, ...]:
        if self.kinds[layer] == "conv":
            return (n_out, n_in_units, self.kernel_size, self.kernel_size)
        return (n_out, n_in_units * self.in_blocks[layer])

    def _init_tensors(
        self, shape: Sequence[int], fan_in: int, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight of ``shape`` and bias [shape[0]] initialised as a layer with ``fan_in`` inputs."""
        bound = 1.0 / math.sqrt(max(fan_in, 1))
        weight = torch.empty(*shape, device=device)
        if self.init == "truncated_normal":
            nn.init.trunc_normal_(weight, std=0.01, a=-0.02, b=0.02)
        else:  # what nn.Linear / nn.Conv2d do: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), ..)
            nn.init.uniform_(weight, -bound, bound)
        bias = torch.empty(shape[0], device=device).uniform_(-bound, bound)
        return weight, bias

    # ----------------------------------------------------------------- checkpoints
    def get_extra_state(self) -> dict:
        return {"unit_timestamps": [ts.clone() for ts in self.unit_timestamps]}

    def set_extra_state(self, state: dict) -> None:
        self.unit_timestamps = [ts.clone().to(torch.int64).cpu() for ts in state["unit_timestamps"]]
        self.structure_changed()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        """Load weights of any size this network could have grown to: layers grown or
        shrunk by DEN are resized first; anything that does not fit the configuration (the
        number of layers, the input, a layer's inputs against the layer below, a width that
        only DEN may change, a head) is refused with a ValueError saying what."""
        problem = self.state_problem(state_dict)
        if problem:
            raise ValueError(problem)
        device = self.weights[0].device if self.kinds else torch.device("cpu")
        for name, plist in (
            ("weights", self.weights),
            ("biases", self.biases),
            ("head_weights", self.head_weights),
            ("head_biases", self.head_biases),
        ):
            i = 0
            while f"{name}.{i}" in state_dict:
                shape = state_dict[f"{name}.{i}"].shape
                if i >= len(plist):
                    plist.append(nn.Parameter(torch.empty(shape, device=device)))
                elif plist[i].shape != shape:
                    plist[i] = nn.Parameter(torch.empty(shape, device=device))
                i += 1
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def state_problem(self, state: Any) -> str | None:
        """What in ``state`` (a state dict) does not fit this network's configuration, or None."""
        if not isinstance(state, Mapping):
            return f"the network state is a {type(state).__name__}"
        count = sum(1 for k in state if str(k).startswith("weights."))
        if count != self.num_layers:
            return f"{count} layers where the model config has {self.num_layers}"
        widths = []
        for layer in range(self.num_layers):
            weight, bias = state.get(f"weights.{layer}"), state.get(f"biases.{layer}")
            if not isinstance(weight, torch.Tensor) or weight.dim() < 1:
                return f"layer {layer + 1} has no weight"
            n_out = int(weight.shape[0])
            n_in = widths[-1] if widths else (self.input_shape[0] if self.kinds[0] == "conv" else 1)
            expected = self._weight_shape(layer, n_out, n_in)
            if tuple(weight.shape) != expected or n_out < 1:
                return f"layer {layer + 1}'s weight is {list(weight.shape)}, the model config gives {list(expected)}"
            if not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (n_out,):
                return f"layer {layer + 1}'s bias does not match its {n_out} units"
            if not self.growable and n_out != self.config_widths[layer]:
                return (
                    f"layer {layer + 1} has {n_out} units where the model config has "
                    f"{self.config_widths[layer]} (only DEN changes a layer's size)"
                )
            widths.append(n_out)
        return self._heads_problem(state, widths) or self._timestamps_problem(state, widths)

    def _heads_problem(self, state: Mapping, widths: list[int]) -> str | None:
        limit = (widths[-1] if widths else 1) * self.head_block
        i = 0
        while f"head_weights.{i}" in state:
            weight, bias = state[f"head_weights.{i}"], state.get(f"head_biases.{i}")
            if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
                return f"head {i + 1} is not a matrix"
            n_in = int(weight.shape[1])
            if n_in > limit or n_in % self.head_block or n_in < 1:
                return f"head {i + 1} reads {n_in} inputs, the last layer gives {limit}"
            if not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (weight.shape[0],):
                return f"head {i + 1}'s bias does not match its {weight.shape[0]} outputs"
            i += 1
        if f"head_biases.{i}" in state:
            return f"head {i + 1} has a bias but no weight"
        return None

    def _timestamps_problem(self, state: Mapping, widths: list[int]) -> str | None:
        extra = state.get("_extra_state")
        stamps = extra.get("unit_timestamps") if isinstance(extra, Mapping) else None
        if not isinstance(stamps, list | tuple) or len(stamps) != len(widths):
            return "the units' timestamps do not match the layers"
        for layer, (ts, n) in enumerate(zip(stamps, widths, strict=True)):
            if not isinstance(ts, torch.Tensor) or tuple(ts.shape) != (n,):
                return f"layer {layer + 1} has {n} units but not {n} timestamps"
            first = int((ts == 0).sum())  # DEN adds units of later tasks, never removes these
            if first != self.config_widths[layer]:
                return (
                    f"layer {layer + 1} has {first} units of the first task where the model "
                    f"config has {self.config_widths[layer]}"
                )
        return None


def _pool_sizes(pool: int | Sequence[int], conv_layers: int) -> list[int]:
    """One max-pool size per conv layer (``pool``: one for all, or one each)."""
    pools = [pool] * conv_layers if isinstance(pool, int) else [int(p) for p in pool]
    if len(pools) != conv_layers:
        raise ConfigError(
            "model.pools",
            list(pools),
            f"one pool size per conv layer is needed ({conv_layers} conv layers)",
            "give as many entries as model.conv_channels, or null to use model.pool",
        )
    return pools


class _FrozenBlockLinear(torch.autograd.Function):
    """``F.linear(h, weight, bias)`` whose block ``weight[:rows, :cols]`` and ``bias[:rows]``
    are frozen and whose input gradient is needed from column ``grad_from`` on (0 = all).
    Shapes: h [N, n_in], weight [n_out, n_in], bias [n_out].

    The backward computes the weight gradient of the new rows (all columns) and of the old
    rows' new columns only; for a grown layer that is a fraction of the full ``dz^T h``."""

    @staticmethod
    def forward(ctx, h, weight, bias, rows, cols, grad_from):  # type: ignore[override]
        ctx.save_for_backward(h, weight)
        ctx.block = (rows, cols, grad_from)
        return F.linear(h, weight, bias)

    @staticmethod
    def backward(ctx, dz):  # type: ignore[override]
        h, weight = ctx.saved_tensors
        rows, cols, grad_from = ctx.block
        dh = dw = db = None
        if ctx.needs_input_grad[0]:
            if grad_from == 0:
                dh = dz @ weight
            else:
                dh = torch.zeros_like(h)
                dh[:, grad_from:] = dz @ weight[:, grad_from:]
        if ctx.needs_input_grad[1]:
            dw = torch.zeros_like(weight)
            dw[rows:] = dz[:, rows:].t() @ h
            dw[:rows, cols:] = dz[:, :rows].t() @ h[:, cols:]
        if ctx.needs_input_grad[2]:
            db = torch.zeros_like(dz[0])
            db[rows:] = dz[:, rows:].sum(0)
        return dh, dw, db, None, None, None


class _FrozenBlockConv(torch.autograd.Function):
    """``F.conv2d(h, weight, bias, padding=padding)`` (stride 1) whose old filters' weights
    from the old input channels, ``weight[:rows, :cols]``, and ``bias[:rows]`` are frozen,
    and whose input gradient is needed from channel ``grad_from`` on (0 = all).
    Shapes: h [N, C_in, H, W], weight [C_out, C_in, k, k], bias [C_out].

    The conv counterpart of :class:`_FrozenBlockLinear`: the backward computes the weight
    gradient of the new filters (all channels) and of the old filters' new channels only,
    and the input gradient of the channels that need it. Every part runs in the input's
    memory format (channels-last on the CPU, :meth:`MultiHeadNet._input`): a slice copied
    to NCHW ran at half the speed (LeNet's conv 2 backward on CIFAR: docs/decisions.md);
    the new filters' weight gradient and the input gradient then equal the plain backward's
    bit for bit."""

    @staticmethod
    def forward(ctx, h, weight, bias, rows, cols, grad_from, padding):  # type: ignore[override]
        ctx.save_for_backward(h, weight)
        ctx.block = (rows, cols, grad_from, padding)
        return F.conv2d(h, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, dz):  # type: ignore[override]
        h, weight = ctx.saved_tensors
        rows, cols, grad_from, padding = ctx.block
        layout = (
            torch.channels_last
            if h.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )

        def conv_grads(dz_part, h_part, w_part, need_input, need_weight):
            return torch.ops.aten.convolution_backward(
                dz_part.contiguous(memory_format=layout),
                h_part.contiguous(memory_format=layout),
                w_part.contiguous(),
                None,
                [1, 1],
                [padding, padding],
                [1, 1],
                False,
                [0, 0],
                1,
                [need_input, need_weight, False],
            )[:2]

        dh = dw = db = None
        if ctx.needs_input_grad[0]:
            if grad_from == 0:
                dh = conv_grads(dz, h, weight, True, False)[0]
            else:
                dh = torch.zeros_like(h)
                if grad_from < h.shape[1]:
                    dh[:, grad_from:] = conv_grads(
                        dz, h[:, grad_from:], weight[:, grad_from:], True, False
                    )[0]
        if ctx.needs_input_grad[1]:
            dw = torch.zeros_like(weight)
            if rows < weight.shape[0]:
                dw[rows:] = conv_grads(dz[:, rows:], h, weight[rows:], False, True)[1]
            if rows and cols < weight.shape[1]:
                dw[:rows, cols:] = conv_grads(
                    dz[:, :rows], h[:, cols:], weight[:rows, cols:], False, True
                )[1]
        if ctx.needs_input_grad[2]:
            db = torch.zeros_like(dz[0, :, 0, 0])
            db[rows:] = dz[:, rows:].sum((0, 2, 3))
        return dh, dw, db, None, None, None, None


def num_layers(cfg: ModelConfig) -> int:
    """Hidden layers of the trunk a model config describes (conv layers first)."""
    return (len(cfg.conv_channels) if cfg.arch == "conv" else 0) + len(cfg.hidden)


def build_network(cfg: ModelConfig, input_shape: Sequence[int]) -> MultiHeadNet:
    """The one place a (validated) model config becomes a network."""
    conv = list(cfg.conv_channels) if cfg.arch == "conv" else []
    pool = cfg.pool if cfg.pools is None or not conv else list(cfg.pools)
    return MultiHeadNet(input_shape, conv, list(cfg.hidden), cfg.kernel_size, pool, cfg.init)
