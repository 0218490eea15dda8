#!/usr/bin/env python3
"""The peer of DataBenchmarks: transformers' apply_chat_template with assistant masks on the same
JSONL file (records normalised to messages as Scripts/fixtures/data_labels.py does), one process.
Usage: peer.py DATA.jsonl   (the tokenizer's construction is not timed)."""
import json, os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "fixtures"))
from data_labels import GEN_TEMPLATE, build_tokenizer, to_messages  # noqa: E402


def main():
    tok = build_tokenizer()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    t0 = time.time()
    records = tokens = 0
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            records += 1
            if "text" in r:
                ids = tok(r["text"], add_special_tokens=False)["input_ids"] + [eos]
            else:
                out = tok.apply_chat_template(to_messages(r), chat_template=GEN_TEMPLATE, tokenize=True,
                                              return_dict=True, return_assistant_tokens_mask=True)
                ids = out["input_ids"][:2048]
            tokens += min(len(ids), 2048)
    dt = time.time() - t0
    print("BENCH transformers preprocess records=%d tokens=%d: %.3f s, %.0f records/s, %.0f tokens/s" % (
        records, tokens, dt, records / dt, tokens / dt))


if __name__ == "__main__":
    main()
