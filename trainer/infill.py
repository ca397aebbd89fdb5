"""Inference with a causal-masked model (paper §2.2): infilling and left-to-right generation.

Infilling n regions of a document given as n + 1 parts conditions on the parts with
a sentinel in each gap and one more at the end, then generates each region in turn
after its sentinel, until <|endofmask|>:

    <|endoftext|> A <M0> C <M1> E <M2> <M0> B <|endofmask|> <M1> D <|endofmask|>

For one region this is footnote 3's prompt, `Left <M0> Right <M1> <M0>`: the extra
<M1> says that the document may go on after Right, which §2.2 found helps the model
end the infill with <|endofmask|>. Sentinels are never generated (the model was not trained
to emit them). Decoding samples as the paper's evaluations do (§5: nucleus top-p 0.95 at
temperature 0.2, also the defaults of InCoder's example code), seeded; temperature 0 is
greedy.

With `ext`, the document starts with the opening file tag `<| file ext=.py |>` (the
metadata markup of §3.3, written by `transforms.formatting.markup`), so the model knows the
language; the returned text leaves the tag out.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from schemas.config import SAMPLE_TEMPERATURE as TEMPERATURE
from schemas.config import SAMPLE_TOP_P as TOP_P
from trainer.masking import SpecialIds, restore
from transforms.formatting import markup

INSERT_MARKER = "<insert>"  # marks a region to fill in CLI input, as in InCoder's demo


def file_prefix(ext: str | None) -> str:
    """The opening file tag with the extension attribute (`<| file ext=.py |>` and a newline), or ""."""
    return markup.open_tag("file", [("ext", ext)]) + "\n" if ext else ""


@dataclasses.dataclass(frozen=True)
class Infill:
    text: str  # the document with every region filled in
    infills: tuple[str, ...]  # the text generated for each region
    finished: tuple[bool, ...]  # whether each region ended with <|endofmask|> (not the token limit)


def load_checkpoint(path: str, device: str = "cpu"):
    """(model, tokenizer) from a checkpoint directory, or the newest checkpoint of a version."""
    # Imported here: infilling with a model already loaded (a fresh process that loads it with
    # transformers' Auto classes) needs neither transformers' loaders nor Beam's filesystems.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from infra import storage
    from trainer.checkpoints import CHECKPOINTS_DIR, list_checkpoints

    if not storage.exists(storage.join(path, "config.json")):
        found = list_checkpoints(storage.join(path, CHECKPOINTS_DIR)) or list_checkpoints(path)
        if not found:
            raise FileNotFoundError(f"{path} is neither a checkpoint nor a version with checkpoints/")
        path = found[-1]
    with storage.LocalCopy(path, fetch=tuple(storage.list_files(path))) as local:  # a cloud checkpoint is copied here
        model = AutoModelForCausalLM.from_pretrained(local).to(device).eval()
        return model, AutoTokenizer.from_pretrained(local)


def _sample(
    model,
    prompt: list[int],
    stop: int,
    suppress: list[int],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
) -> list[int]:
    """New token ids after `prompt`, up to and including `stop` when it comes."""
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt], device=device)
    sampling = {"do_sample": False}
    if temperature > 0:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        torch.manual_seed(seed)
        out = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            eos_token_id=stop,
            pad_token_id=model.config.pad_token_id if model.config.pad_token_id is not None else stop,
            suppress_tokens=suppress,
            **sampling,
        )
    return out[0, len(prompt) :].tolist()


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def _decode(tokenizer, token_ids: Sequence[int]) -> str:
    return tokenizer.decode(token_ids, clean_up_tokenization_spaces=False)


def infill(
    model,
    tokenizer,
    parts: Sequence[str],
    max_new_tokens: int = 128,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
    ext: str | None = None,
) -> Infill:
    """Fill the len(parts) - 1 regions between consecutive parts, in order."""
    ids = SpecialIds.from_tokenizer(tokenizer)
    regions = len(parts) - 1
    if not 1 <= regions < len(ids.masks):
        raise ValueError(f"infill needs 2 to {len(ids.masks)} parts (1 to {len(ids.masks) - 1} regions), not {len(parts)}")
    head = [ids.bos] + _encode(tokenizer, file_prefix(ext))
    sequence = list(head)
    for k, part in enumerate(parts):
        sequence += _encode(tokenizer, part) + [ids.masks[k]]  # the last one is the extra sentinel of footnote 3
    suppress = list(ids.masks)
    infills, finished = [], []
    for k in range(regions):
        sequence.append(ids.masks[k])
        new = _sample(model, sequence, ids.eom, suppress, max_new_tokens, temperature, top_p, seed + k)
        done = bool(new) and new[-1] == ids.eom
        span = new[:-1] if done else new
        sequence += span + [ids.eom]
        infills.append(_decode(tokenizer, span))
        finished.append(done)
    text = _decode(tokenizer, restore(sequence, ids)[len(head) :])
    return Infill(text=text, infills=tuple(infills), finished=tuple(finished))


def generate(
    model,
    tokenizer,
    prompt: str,
    max_new_tokens: int = 128,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = 0,
    ext: str | None = None,
) -> str:
    """Left-to-right continuation of `prompt`, up to the end of the document (§2.2: no special tokens)."""
    ids = SpecialIds.from_tokenizer(tokenizer)
    prompt_ids = [ids.bos] + _encode(tokenizer, file_prefix(ext)) + _encode(tokenizer, prompt)
    new = _sample(model, prompt_ids, ids.bos, [*ids.masks, ids.eom], max_new_tokens, temperature, top_p, seed)
    if new and new[-1] == ids.bos:
        new = new[:-1]
    return _decode(tokenizer, new)


def run_command(args) -> str:
    """`code-corpus infill|generate`: the completed (or continued) text."""
    if args.text is not None:
        text = args.text
    else:
        with open(args.file, encoding="utf-8") as f:
            text = f.read()
    model, tokenizer = load_checkpoint(args.checkpoint, args.device)
    options = dict(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed, ext=args.ext
    )
    if args.command == "generate":
        return text + generate(model, tokenizer, text, **options)
    parts = text.split(INSERT_MARKER)
    if len(parts) < 2:
        raise ValueError(f"the text has no {INSERT_MARKER} marker: mark each region to fill with {INSERT_MARKER}")
    return infill(model, tokenizer, parts, **options).text
