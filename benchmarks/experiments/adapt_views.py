"""Adapting to new words: three changes to ``spokenword adapt`` on a validation protocol (not adopted; docs/experiments.md).

    python -m benchmarks.experiments.adapt_views '{"ARM": {OPTIONS}, ...}'   (default: {"base": {}})

Protocol: the ten command words of speech_commands_words; k takes per word (default 10) drawn from the
training-part speakers (spokenword.data.corpora.negatives.speaker_subset) whose SHA-1 speaker hash is even,
scored on the training-part speakers whose hash is odd (221 clips), never on the clips ``python -m
benchmarks.adapt vocab`` scores; adapted from the bundled model, draws 0 and 1. Printed per draw: accuracy at
the model's threshold, the best of the ten words alone ("among ten"), how the clips were answered.

Options besides adapt()'s own (steps, views, lr, ...): ``copies`` N with ``wave`` (WaveAugment arguments):
each take also gives N - 1 waveform-augmented copies before the feature views; ``last_only``: train only the
head's output layer (its batch norm and hidden layer kept as the source's); ``imprint`` S: new words' output
rows start from the mean hidden activation of their takes (weight imprinting), scaled to S times the mean
norm of the old rows. The arms patch adapt's internals (``_features``, ``_grown_head``) for the run.
"""
import hashlib, json, os, shutil, sys, tempfile, time
from dataclasses import replace
from pathlib import Path
import numpy as np
import torch
from benchmarks.adapt import takes_folder, COMMAND_WORDS
from spokenword.data.corpora.negatives import OtherWords
from spokenword.data.splits import resolve_root
from spokenword.inference.load import load_model
from spokenword.training import adapt as A

torch.set_num_threads(1)
root = resolve_root(None)
clips = sorted((replace(r, label=r.path.parent.name) for r in OtherWords().recordings(root)), key=lambda r: (r.label, r.path.name))
words = list(COMMAND_WORDS)
odd = lambda s: int(hashlib.sha1(s.encode()).hexdigest(), 16) % 2
pool = {w: [r for r in clips if r.label == w and r.subset == "train" and not odd(r.speaker)] for w in words}
scored = [r for r in clips if r.label in words and r.subset == "train" and odd(r.speaker)]
print({w: len(p) for w, p in pool.items()}, len(scored), file=sys.stderr)

ORIG = A._features
def wave_features(copies, augment_args):
    from spokenword import audio
    from spokenword.data.wave_augment import WaveAugment
    aug = WaveAugment(**augment_args).bind(root)
    def features(paths, hparams, mean, std, log):
        rate = int(hparams.get("sample_rate", 8000))
        images, kept = ORIG(paths, hparams, mean, std, log)
        if copies <= 1:
            return images, kept
        from spokenword.frontend.graph import featurize
        from spokenword.frontend.host import host_steps
        from spokenword.frontend.settings import FeatureSettings
        settings = FeatureSettings.from_dict(hparams["features"])
        rng = np.random.default_rng(1234)
        waves = [audio.load(paths[i], rate) for i in kept]
        extra = []
        for c in range(copies - 1):
            extra.append([host_steps(aug(w, rate, rng), settings) for w in waves])
        more = [(featurize(e, rate, settings) - mean) / max(std, 1e-6) for e in extra]
        return torch.cat([images] + more), list(kept) * copies
    return features

ORIG_GROWN = A._grown_head
class FrozenBN(torch.nn.Module):
    def __init__(self, bn):
        super().__init__(); self.bn = bn
    def forward(self, x):
        return torch.nn.functional.batch_norm(x, self.bn.running_mean, self.bn.running_var, self.bn.weight, self.bn.bias, False, 0.0, self.bn.eps)
def frozen_grown(head_state, old, labels, net):
    ORIG_GROWN(head_state, old, labels, net)
    for p in list(net.head[0].parameters()) + list(net.head[2].parameters()):
        p.requires_grad_(False)
    net.head[0].eval()
    net.head.train = lambda mode=True: (torch.nn.Module.train(net.head, mode), net.head[0].eval())[0]

IMPRINT = {}
def imprint_grown(head_state, old, labels, net):
    ORIG_GROWN(head_state, old, labels, net)
    paths, words_of = IMPRINT["paths"], IMPRINT["words"]
    st = IMPRINT["state"]
    images, kept = ORIG(paths, st.hparams, st.mean, st.std, lambda s: None)
    net.eval()
    with torch.no_grad():
        emb = net.forward_features(images)
        h = net.head[:4](emb)
    last = net.head[5]
    with torch.no_grad():
        norms = last.weight[[labels.index(w) for w in old if w in labels]].norm(dim=1).mean()
        bias = last.bias[[labels.index(w) for w in old if not w.startswith("_")]].mean()
        for w in set(words_of):
            rows = [i for i, x in zip(kept, range(len(kept))) if words_of[i] == w]
            m = h[[kept.index(i) for i in rows]].mean(0)
            last.weight[labels.index(w)] = m / m.norm() * norms * IMPRINT["scale"]
            last.bias[labels.index(w)] = bias
    net.train()

def run(tag, k=10, draws=(0, 1), copies=1, wave=None, last_only=False, imprint=0.0, **options):
    A._features = wave_features(copies, wave or {}) if copies > 1 else ORIG
    A._grown_head = frozen_grown if last_only else ORIG_GROWN
    out = []
    for d in draws:
        rng = np.random.default_rng(d)
        chosen = {w: [pool[w][i].path for i in rng.permutation(len(pool[w]))[:k]] for w in words}
        work = Path(tempfile.mkdtemp(prefix="adapt-views-"))
        if imprint:
            from spokenword import pretrained
            folder = pretrained.folder()
            IMPRINT.update(paths=[p for w in words for p in chosen[w]], words=[w for w in words for p in chosen[w]], scale=imprint,
                           state=A.read_state(folder / "fsdd_embedding_newvoices.adapt.npz"))
            A._grown_head = imprint_grown
        t = time.perf_counter()
        with torch.random.fork_rng():
            torch.manual_seed(d)
            A.adapt(None, takes_folder(work / "takes", chosen), work / "model", seed=d, log=lambda s: None, **options)
        secs = time.perf_counter() - t
        model = load_model(work / "model", threads=1)
        said = [res[0]["label"] for _, res in model.predict_many([r.path for r in scored])]
        probs = model.probabilities([model.featurize(model.waveform(r.path)) for r in scored])
        labels = model.labels
        best = [labels[i] for i in probs.argmax(1)]
        acc = np.mean([a == r.label for a, r in zip(said, scored)])
        wi = [labels.index(w) for w in words]
        among = np.mean([words[int(np.argmax(p[wi]))] == r.label for p, r in zip(probs, scored)])
        tally = {}
        for a, r in zip(said, scored):
            key = "right" if a == r.label else ("word" if a in words else a if a.startswith("_") else "digit")
            tally[key] = tally.get(key, 0) + 1
        out.append((acc, among, tally, secs))
        print(f"{tag} draw {d}: {100*acc:.1f} %, among ten {100*among:.1f} %, {tally}, {secs:.1f} s", flush=True)
        if os.environ.get("DUMP"):
            for a, r, p in zip(said, scored, probs):
                if a != r.label:
                    print(f"   {r.path.name} {r.label} -> {a}  p={p.max():.2f}", flush=True)
        shutil.rmtree(work)
    print(f"{tag}: mean {100*np.mean([o[0] for o in out]):.1f} % among {100*np.mean([o[1] for o in out]):.1f}", flush=True)

if __name__ == "__main__":
    arms = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {"base": {}}
    for tag, options in arms.items():
        run(tag, **options)
