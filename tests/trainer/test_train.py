"""End to end on CPU: a tiny model learns the counting corpus and infills held-out documents.

Chance, stated: the number that follows a gap is determined by the numbers before it,
and over the held-out cases it is spread evenly over the MODULUS = 30 numbers, so any
guess that ignores the context gets the first infilled number right 1 time in 30
(3.3%), and a whole span at most as often. The model must beat that many times over.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from pipeline import cli
from schemas.config import TrainConfig
from tests.conftest import ROOT
from tests.trainer.conftest import HELD_OUT_STARTS, MODULUS, ONE_THREAD_ENV, counting_text, one_thread, write_version
from trainer.masking import SpecialIds

# torch and transformers (trainer.train, trainer.infill, trainer.checkpoints) are imported by the
# tests that use them: at module level every test worker would import them while collecting (about 4 CPU s).

pytestmark = pytest.mark.slow  # trains a model

# The recipe holds on every seed: seeds 0-7 of both the model and the corpus, at lr 0.003, 400
# updates and batches of 16 rows (first number / whole span right, %): 57/25 (seed 0, the one used
# here), 37/22, 48/23, 75/40, 68/32, 87/47, 40/27, 45/28 (seed 7). Batches of 32 did better on the
# first number (52% to 83%) at twice the CPU; 250 updates of 32 rows at lr 0.005 fell to 30% on seed 2.
# At lr 0.01 and 300 updates two seeds of eight never learnt to infill (7/3 on seeds 4 and 7); lr 0.02
# did worse (18/2, 0/0 on those seeds).
E2E = TrainConfig(
    preset="tiny",
    steps=400,
    batch_size=16,
    context_length=32,
    lr=0.003,
    warmup_steps=30,
    checkpoint_every=200,
    eval_batches=4,
    log_every=50,
    device="cpu",
)
CHANCE = 1 / MODULUS
HELD_OUT_CASES = 60
MIN_FIRST_NUMBER_ACCURACY = 0.30  # 9x chance (measured: 37% to 87% over seeds 0-7)
MIN_EXACT_SPAN_ACCURACY = 0.15  # 4.5x the chance of even the first number (measured: 22% to 47%)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from trainer.train import train

    version = write_version(str(tmp_path_factory.mktemp("e2e")), train_docs=400, valid_docs=40)
    with one_thread():
        result = train(E2E, version)
    return version, result


def held_out_cases(n: int) -> list[tuple[list[str], int, int]]:
    """(numbers of a held-out document, gap start, gap end): documents no training document equals."""
    rng = random.Random(2024)
    cases = []
    for _ in range(n):
        length = rng.randint(4, 7)
        numbers = counting_text(rng.choice(HELD_OUT_STARTS), length).split()
        i = rng.randint(1, length - 2)
        j = rng.randint(i + 1, min(length - 1, i + 3))
        cases.append((numbers, i, j))
    return cases


def fill(model, tokenizer, numbers, i, j):
    """Greedy infilling (accuracy is measured without sampling noise)."""
    from trainer.infill import infill

    parts = [" ".join(numbers[:i]) + " ", " " + " ".join(numbers[j:])]
    return infill(model, tokenizer, parts, max_new_tokens=8, temperature=0.0)


def test_training_lowers_the_loss_clearly(trained):
    from trainer.checkpoints import LOG_FILE, read_log

    version, result = trained
    losses = [r["loss"] for r in read_log(os.path.join(version, "checkpoints", LOG_FILE)) if "loss" in r]
    assert len(losses) == E2E.steps and result.resumed_from == 0
    start, end = sum(losses[:5]) / 5, sum(losses[-20:]) / 20
    assert end < 0.4 * start, f"loss went from {start:.3f} to {end:.3f}"  # measured: 0.20 * start
    assert result.valid_loss < 0.4 * start  # measured: 0.20 * start
    assert result.tokens > 0 and result.tokens_per_second > 0


def test_infills_held_out_spans_far_better_than_chance(trained):
    from trainer.infill import load_checkpoint

    version, _ = trained
    model, tokenizer = load_checkpoint(version)
    first = exact = 0
    starts = set()  # the held-out documents start where no training document does
    for numbers, i, j in held_out_cases(HELD_OUT_CASES):
        result = fill(model, tokenizer, numbers, i, j)
        got, want = result.infills[0].split(), numbers[i:j]
        first += got[:1] == want[:1]
        exact += got == want and result.finished[0]
        starts.add(int(numbers[0]))
    assert starts <= set(HELD_OUT_STARTS)
    first_rate, exact_rate = first / HELD_OUT_CASES, exact / HELD_OUT_CASES
    print(f"first number right {first_rate:.0%}, whole span right {exact_rate:.0%}, chance {CHANCE:.1%}")
    assert first_rate >= MIN_FIRST_NUMBER_ACCURACY, f"first infilled number right in {first_rate:.0%} of cases"
    assert exact_rate >= MIN_EXACT_SPAN_ACCURACY, f"whole span right in {exact_rate:.0%} of cases"


def test_generates_left_to_right(trained):
    from trainer.infill import generate, load_checkpoint

    version, _ = trained
    model, tokenizer = load_checkpoint(version)
    continuation = generate(model, tokenizer, "11 12 13", max_new_tokens=3, temperature=0.0).split()
    assert continuation[:1] == ["14"]


MODEL_CARD_SCRIPT = """
import json, sys
from transformers import AutoModelForCausalLM, AutoTokenizer
from trainer.infill import infill
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
ids = tokenizer.encode("05 06")
result = infill(model, tokenizer, sys.argv[2:], max_new_tokens=8, temperature=0.0)
print(json.dumps({"class": type(model).__name__, "tokens": tokenizer.convert_ids_to_tokens(ids),
                  "text": result.text, "infills": result.infills}))
"""


def test_checkpoint_loads_with_auto_classes_in_a_fresh_process_and_infills(trained):
    from trainer.infill import infill, load_checkpoint

    version, result = trained
    numbers, i, j = held_out_cases(1)[0]
    parts = [" ".join(numbers[:i]) + " ", " " + " ".join(numbers[j:])]
    model, tokenizer = load_checkpoint(result.checkpoint)
    here = infill(model, tokenizer, parts, max_new_tokens=8, temperature=0.0)
    proc = subprocess.run(
        [sys.executable, "-c", MODEL_CARD_SCRIPT, result.checkpoint, *parts],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **ONE_THREAD_ENV}, check=True,
    )  # fmt: skip
    there = json.loads(proc.stdout.strip().splitlines()[-1])
    assert there["class"] == "XGLMForCausalLM"
    assert there["tokens"] == ["<|endoftext|>", "05", "06"]  # encoding prepends <|endoftext|>, as InCoder's does
    assert there["infills"] == list(here.infills) and there["text"] == here.text


def test_cli_infills_and_generates_from_a_version(trained, capsys):
    from trainer.infill import load_checkpoint

    version, _ = trained
    model, tokenizer = load_checkpoint(version)
    expected = fill(model, tokenizer, ["07", "08", "09", "10", "11"], 2, 3).text
    assert cli.main(["infill", version, "--text", "07 08 <insert> 10 11", "--max-new-tokens", "8", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == expected
    assert cli.main(["generate", version, "--text", "20 21", "--max-new-tokens", "2"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("20 21")
    assert cli.main(["infill", version, "--text", "no marker"]) == 2
    assert "<insert>" in capsys.readouterr().err


class RecordingModel:
    """The trained model, with the prompts `generate` was given written down."""

    def __init__(self, model):
        self.model = model
        self.config = model.config
        self.prompts = []

    def parameters(self):
        return self.model.parameters()

    def generate(self, input_ids, **kwargs):
        self.prompts.append(input_ids[0].tolist())
        return self.model.generate(input_ids=input_ids, **kwargs)


def test_prompts_are_section_2_2s_with_footnote_3s_extra_sentinel(trained):
    from trainer.infill import infill, load_checkpoint

    version, _ = trained
    model, tokenizer = load_checkpoint(version)
    ids = SpecialIds.from_tokenizer(tokenizer)
    m0, m1, m2 = ids.masks[:3]

    def enc(text):
        return tokenizer.encode(text, add_special_tokens=False)

    one = RecordingModel(model)
    infill(one, tokenizer, ["05 06", "09"], max_new_tokens=4)
    assert one.prompts == [[ids.bos, *enc("05 06"), m0, *enc("09"), m1, m0]]  # Left <M0> Right <M1> <M0>

    two = RecordingModel(model)
    result = infill(two, tokenizer, ["05", "08", "11 12"], max_new_tokens=4)
    first, second = two.prompts
    assert first == [ids.bos, *enc("05"), m0, *enc("08"), m1, *enc("11 12"), m2, m0]  # A <M0> C <M1> E <M2> <M0>
    span = enc(result.infills[0])
    assert second == first + span + [ids.eom, m1]  # ... <M0> B <eom> <M1>
    assert result.text.split() == ["05", *result.infills[0].split(), "08", *result.infills[1].split(), "11", "12"]


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(trained):
    import torch

    from trainer.infill import generate, infill, load_checkpoint

    version, _ = trained
    model, tokenizer = load_checkpoint(version)
    state = torch.get_rng_state()
    draws = [infill(model, tokenizer, ["04", "09"], temperature=1.5, seed=s).infills[0] for s in (1, 1, 2, 3, 4, 5)]
    assert draws[0] == draws[1]
    assert len(set(draws[1:])) > 1
    assert torch.equal(state, torch.get_rng_state())
    assert generate(model, tokenizer, "11", temperature=1.5, seed=7) == generate(model, tokenizer, "11", temperature=1.5, seed=7)


def test_sampling_follows_the_paper_by_default_and_ext_adds_the_file_tag(trained):
    """§5 samples with top-p 0.95 at temperature 0.2; `ext` starts the document with `<| file ext=... |>`."""
    from trainer.infill import generate, infill, load_checkpoint

    version, _ = trained
    model, tokenizer = load_checkpoint(version)
    ids = SpecialIds.from_tokenizer(tokenizer)
    recorded = RecordingModel(model)
    calls = []
    recorded_generate = recorded.generate

    def generate_and_record(input_ids, **kwargs):
        calls.append(kwargs)
        return recorded_generate(input_ids, **kwargs)

    recorded.generate = generate_and_record
    result = infill(recorded, tokenizer, ["05 06", "09"], max_new_tokens=4, ext=".py")
    assert (calls[0]["do_sample"], calls[0]["temperature"], calls[0]["top_p"]) == (True, 0.2, 0.95)
    tag = tokenizer.encode("<| file ext=.py |>\n", add_special_tokens=False)
    assert recorded.prompts[0][: 1 + len(tag)] == [ids.bos, *tag]
    assert result.text.startswith("05 06") and "<| file" not in result.text
    generate(recorded, tokenizer, "11", max_new_tokens=2, ext=".js")
    tag = tokenizer.encode("<| file ext=.js |>\n", add_special_tokens=False)
    assert recorded.prompts[-1] == [ids.bos, *tag, *tokenizer.encode("11", add_special_tokens=False)]
    parser = cli.build_parser()
    args = parser.parse_args(["infill", version, "--text", "x <insert>", "--ext", ".py"])
    assert (args.temperature, args.top_p, args.ext) == (0.2, 0.95, ".py")
