"""Called by run.sh: times the three tokenizers on the same text, single-threaded."""
import base64, os, re, subprocess, sys, tempfile, time, unicodedata

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "fixtures"))
import tokenizer_corpus  # noqa: E402
import tiktoken  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers  # noqa: E402
from tokenizer_fixtures import ADDED, PAT, byte_level_table, converter_merges  # noqa: E402

vocab_path, qwenft = sys.argv[1], sys.argv[2]  # qwenft: the qwenft-bench binary
REPEATS = 3


def best(f):
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter(); out = f(); times.append(time.perf_counter() - t)
    return min(times), out


def qwenft_run(path, extra=(), threads="1"):
    env = dict(os.environ, QWENFT_THREADS=threads)
    runs = []
    for _ in range(REPEATS):
        with open(path, "rb") as f:
            p = subprocess.run(["/usr/bin/time", "-v", qwenft, "tokenize", "--tokenizer", vocab_path, *extra],
                               stdin=f, capture_output=True, env=env, check=True)
        err = p.stderr.decode()
        kv = dict(re.findall(r"(\w+)=([\d.]+)", err))
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
        runs.append((float(kv["encode_s"]), float(kv["load_s"]), rss, p.stdout))
    return min(runs)


t = time.perf_counter()
ranks = {base64.b64decode(a): int(b) for a, b in (l.split() for l in open(vocab_path, "rb").read().splitlines() if l)}
enc = tiktoken.Encoding("qwen", pat_str=PAT, mergeable_ranks=ranks, special_tokens={t: i for i, t, _ in ADDED})
tiktoken_load = time.perf_counter() - t
bl = byte_level_table()
s = lambda b: "".join(bl[x] for x in b)
hf = Tokenizer(models.BPE({s(b): r for b, r in ranks.items()}, [(s(a), s(b)) for a, b in converter_merges(ranks)]))
hf.normalizer = normalizers.NFC()
hf.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(PAT), behavior="isolated", invert=False),
                                            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
hf.decoder = decoders.ByteLevel()
hf.add_tokens([AddedToken(t, special=sp, normalized=False) for _, t, sp in ADDED])

cases = tokenizer_corpus.cases()
corpora = {
    "hard corpus": "\n".join(cases),
    "Chinese-heavy": tokenizer_corpus.chinese_heavy(),
}
print("tiktoken %s, vocabulary load: tiktoken %.3f s" % (tiktoken.__version__, tiktoken_load))
for name, text in corpora.items():
    nfc = unicodedata.normalize("NFC", text)
    mb = len(text.encode()) / 1e6
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write(text)
    # One string.
    q_s, q_load, q_rss, q_out = qwenft_run(f.name)
    tk_s, tk_ids = best(lambda: enc.encode(text, allowed_special="all"))
    hf_s, hf_enc = best(lambda: hf.encode(text))
    ours = [int(x) for x in q_out.decode().strip()[1:-1].split(",") if x]
    if text == nfc:
        tkn, tk_nfc_ids = tk_s, tk_ids
    else:
        tkn, tk_nfc_ids = best(lambda: enc.encode(unicodedata.normalize("NFC", text), allowed_special="all"))
    same = "ids identical to tiktoken(NFC) and HF" if ours == tk_nfc_ids == hf_enc.ids else "IDS DIFFER"
    print("\n%s: %.2f MB, %d tokens (%s)" % (name, mb, len(tk_ids), same))
    print("  one string:  qwenft %6.2f MB/s   tiktoken %6.2f MB/s (%.2f with NFC first)   HF %6.2f MB/s" % (
        mb / q_s, mb / tk_s, mb / tkn, mb / hf_s))
    print("               qwenft/tiktoken %.2fx   qwenft/HF %.2fx   (qwenft load %.3f s, peak RSS %d MB)" % (
        tk_s / q_s, hf_s / q_s, q_load, q_rss // 1024))
    # One text per line (how datasets arrive), single-threaded.
    lines = text.split("\n")
    l_s, _, l_rss, _ = qwenft_run(f.name, ["--each-line"], threads="1")
    tkl_s, _ = best(lambda: [enc.encode(l, allowed_special="all") for l in lines])
    hfl_s, _ = best(lambda: hf.encode_batch(lines))
    print("  per line:    qwenft %6.2f MB/s   tiktoken %6.2f MB/s   HF %6.2f MB/s   (%d lines, 1 thread)" % (
        mb / l_s, mb / tkl_s, mb / hfl_s, len(lines)))
    print("               qwenft/tiktoken %.2fx   qwenft/HF %.2fx" % (tkl_s / l_s, hfl_s / l_s))
    b_s, _, b_rss, _ = qwenft_run(f.name, ["--each-line"], threads=str(os.cpu_count()))
    print("  per line, qwenft batch API on %d threads: %.2f MB/s (peak RSS %d MB)" % (os.cpu_count(), mb / b_s, b_rss // 1024))
    os.unlink(f.name)
