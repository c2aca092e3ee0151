"""The model core without Ray: load a sentence-transformers model, embed token ids.

Ray stages wrap this class; it also runs alone, for benchmarks on a bare GPU box.

The hot loop is built so that the accelerator never waits on the host:
- micro-batches are gathered from the window's flat token buffers with numpy (TokenRows);
- on CUDA they go through pinned memory with non-blocking copies, and results stay on the
  device until the window is done (one copy back), so building the next micro-batch on the
  host overlaps the current forward pass;
- a CUDA out-of-memory error halves the micro-batch and retries, and the smaller budget is
  remembered for rows of that length.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .batching import MicroBatch, cut_micro_batches, split_in_half
from .profile import POOLING
from .token_rows import TokenRows

log = logging.getLogger(__name__)

# Attention kernels that keep rows packed into one sequence apart without computing across
# them (varlen flash attention, FlexAttention's document masks). SDPA and eager also keep
# them apart, but through a dense mask over the whole pack: correct, yet quadratic in it.
VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3", "flex_attention")


@dataclass
class EmbeddedWindow:
    embeddings: np.ndarray  # float32 [rows, dim], in the order the rows came in
    padded_len: np.ndarray  # int32 [rows]: tokens computed for the row (its micro-batch's length; packed: its own)
    out_of_memory: np.ndarray  # bool [rows]: a row that did not fit in memory even alone
    micro_batch_seconds: list[float] = field(default_factory=list)  # device time of each micro-batch run


class _MicroBatchClock:
    """Device time of each micro-batch. On CUDA the loop never waits for the GPU, so a host
    clock would time only the kernel launches: events are recorded on the stream instead and
    read after the window's one synchronising copy."""

    def __init__(self, cuda: bool):
        self.cuda, self.marks = cuda, []

    def start(self):
        import torch

        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def stop(self, started) -> None:
        self.marks.append((started, self.start()))

    def seconds(self) -> list[float]:
        if self.cuda:
            return [begin.elapsed_time(end) / 1000 for begin, end in self.marks]
        return [end - begin for begin, end in self.marks]


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_torch_dtype(name: str, device: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)


def resolve_attention(name: str, device: str) -> str:
    """auto: flash-attention 2 where it is installed and a GPU is used, else PyTorch's SDPA."""
    if name != "auto":
        return name
    if device.startswith("cuda"):
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


def resolve_packing(packing: str, attention: str) -> bool:
    """auto: pack where the attention kernel handles packed rows natively, else pad."""
    if packing == "auto":
        return attention in VARLEN_ATTENTION
    return packing == "packed"


# Default micro-batch budgets, measured (docs/performance.md): a GPU wants large matrices;
# on a CPU smaller micro-batches waste less padding and run as fast per token.
GPU_TOKEN_BUDGET, CPU_TOKEN_BUDGET = 16_384, 2_048


def default_token_budget(device: str) -> int:
    return GPU_TOKEN_BUDGET if device.startswith("cuda") else CPU_TOKEN_BUDGET


def last_token_pool(hidden, attention_mask):
    """The hidden state at each row's last attended position (left or right padding)."""
    import torch

    seq_len = attention_mask.shape[1]
    last = seq_len - 1 - attention_mask.flip(dims=[1]).int().argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def _length_bucket(tokens: int) -> int:
    """Rows are remembered by the power of two at or above their length."""
    return 1 << max(int(tokens) - 1, 0).bit_length()


class Embedder:
    """Sarashina-style embedding: Llama forward, last-token pooling, optional L2 norm."""

    def __init__(
        self,
        model_name: str,
        *,
        revision: str | None = None,
        device: str | None = None,
        torch_dtype: str = "auto",
        attn_implementation: str = "auto",
        packing: str = "auto",
        normalize: bool = True,
        max_tokens_per_batch: int | None = None,
    ):
        from sentence_transformers import SentenceTransformer

        self.device = pick_device(device)
        dtype = resolve_torch_dtype(torch_dtype, self.device)
        self.attention = resolve_attention(attn_implementation, self.device)
        model = SentenceTransformer(
            model_name,
            revision=revision,
            device=self.device,
            model_kwargs={"dtype": dtype, "attn_implementation": self.attention},
        )
        model.eval()
        self._check_pooling(model, model_name)
        self.transformer = model[0].auto_model
        self.pad_token_id = model[0].tokenizer.pad_token_id or 0
        self.dimension = model.get_embedding_dimension()
        self.normalize = normalize or any(type(m).__name__ == "Normalize" for m in model)
        self.max_tokens_per_batch = max_tokens_per_batch or default_token_budget(self.device)
        self.packed = resolve_packing(packing, self.attention)
        self._cuda = self.device.startswith("cuda")
        # Token budget that fitted after an out-of-memory error, by length bucket.
        self.budget_caps: dict[int, int] = {}
        if self.packed:
            self._check_packing()
        log.info(
            "loaded %s on %s as %s (%s, %s micro-batches)",
            model_name,
            self.device,
            dtype,
            self.attention,
            "packed" if self.packed else "padded",
        )

    @staticmethod
    def _check_pooling(model, model_name: str) -> None:
        pooling = [m for m in model if type(m).__name__ == "Pooling"]
        mode = getattr(pooling[0], "pooling_mode", None) if pooling else None
        if mode not in (POOLING, (POOLING,), [POOLING]):
            raise ValueError(
                f"model {model_name} pools with {mode!r}; sarashina-batch embeds last-token pooled "
                "models (Sarashina-Embedding family) only"
            )

    def _check_packing(self) -> None:
        """Packed rows are only right when the attention kernel keeps them apart (transformers
        recognises packing from restarting position ids). One tiny forward each way at start-up
        turns a kernel or library that does not into a clear error, not wrong vectors."""
        rows = TokenRows.from_lists([np.arange(10, 19), np.arange(20, 25), np.arange(30, 37)])
        packed = self.embed_token_ids(rows, packed=True).embeddings
        padded = self.embed_token_ids(rows, packed=False).embeddings
        cosine = (packed * padded).sum(1) / np.linalg.norm(packed, axis=1) / np.linalg.norm(padded, axis=1)
        if not np.all(cosine >= 0.999):
            raise ValueError(
                f"packed rows embed differently from padded ones with attention {self.attention!r} "
                f"(cosine {cosine.min():.4f}): this transformers release or kernel does not keep packed rows "
                "apart; set batching.packing=padded"
            )

    def micro_batches(self, lengths: np.ndarray, packed: bool | None = None) -> list[MicroBatch]:
        return cut_micro_batches(lengths, self.max_tokens_per_batch, packed=self.packed if packed is None else packed)

    def embed_token_ids(self, token_ids: TokenRows | list, packed: bool | None = None) -> EmbeddedWindow:
        """Embed a window of tokenized rows; output rows keep the input order. packed: None
        follows the embedder's setting."""
        import torch

        rows = token_ids if isinstance(token_ids, TokenRows) else TokenRows.from_lists(token_ids)
        n = len(rows)
        computed = np.zeros(n, dtype=np.int32)
        out_of_memory = np.zeros(n, dtype=bool)
        out = torch.zeros((n, self.dimension), dtype=torch.float32, device=self.device)
        clock = _MicroBatchClock(self._cuda)
        with torch.inference_mode():
            pending = self.micro_batches(rows.lengths, packed)[::-1]  # a stack: longest first
            while pending:
                batch = pending.pop()
                cap = self.budget_caps.get(_length_bucket(batch.padded_len))
                if cap is not None and batch.padded_tokens > cap and len(batch.rows) > 1:
                    pending.extend(reversed(split_in_half(batch, rows.lengths)))
                    continue
                try:
                    started = clock.start()
                    self._embed_micro_batch(rows, batch, out)
                    clock.stop(started)
                except torch.cuda.OutOfMemoryError:  # torch.OutOfMemoryError since 2.5; this name in every release
                    pending.extend(reversed(self._after_out_of_memory(batch, rows.lengths, out_of_memory)))
                    continue
                computed[batch.rows] = rows.lengths[batch.rows] if batch.packed else batch.padded_len
            # The one device-to-host copy of the window (waits for the last forward pass).
            embeddings = out.cpu().numpy()
        return EmbeddedWindow(embeddings, computed, out_of_memory, clock.seconds())

    def _after_out_of_memory(self, batch: MicroBatch, lengths: np.ndarray, out_of_memory: np.ndarray):
        import torch

        if self._cuda:
            torch.cuda.empty_cache()
        if len(batch.rows) == 1:
            log.warning("a row of %d tokens does not fit in memory on its own", batch.padded_len)
            out_of_memory[batch.rows] = True
            return []
        bucket = _length_bucket(batch.padded_len)
        self.budget_caps[bucket] = min(self.budget_caps.get(bucket, batch.padded_tokens), batch.padded_tokens // 2)
        log.warning(
            "out of memory on %d rows x %d tokens: halving micro-batches of rows up to %d tokens to %d tokens",
            len(batch.rows),
            batch.padded_len,
            bucket,
            self.budget_caps[bucket],
        )
        return split_in_half(batch, lengths)

    def _embed_micro_batch(self, rows: TokenRows, batch: MicroBatch, out) -> None:
        if batch.packed:
            ids, positions, last = rows.packed(batch.rows)
            hidden = self.transformer(
                input_ids=self._to_device(ids), position_ids=self._to_device(positions), use_cache=False
            ).last_hidden_state[0]
        else:
            ids, mask = rows.padded(batch.rows, batch.padded_len, self.pad_token_id)
            hidden = self.transformer(
                input_ids=self._to_device(ids), attention_mask=self._to_device(mask), use_cache=False
            ).last_hidden_state
            # Right padding: a row's last token sits at its length - 1.
            last = np.arange(len(batch.rows)) * batch.padded_len + rows.lengths[batch.rows] - 1
            hidden = hidden.reshape(-1, hidden.shape[-1])
        pooled = hidden[self._to_device(last)].float()
        if self.normalize:
            import torch

            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        out[self._to_device(batch.rows)] = pooled

    def _to_device(self, array: np.ndarray):
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
        if self._cuda:
            # Pinned host memory lets the copy run asynchronously, behind the current forward.
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor
