#!/usr/bin/env python3
"""The peer of Scripts/bench/dpo/run.sh: trl.DPOTrainer + peft LoRA on the same model folder and
preference records, f32 on the CPU. Prints JSON: seconds of every optimizer step.

usage: trl_side.py MODEL_DIR DATA.jsonl STEPS THREADS SEQ RANK
"""
import json, sys, tempfile, time

import torch
from datasets import Dataset
from peft import LoraConfig
from torch.utils.data import SequentialSampler
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback
from trl import DPOConfig, DPOTrainer

model_dir, data, steps, threads, seq, rank = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)
tok = PreTrainedTokenizerFast.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
rows = [json.loads(l) for l in open(data)]


class Timer(TrainerCallback):
    def __init__(self):
        self.t, self.steps = None, []

    def on_step_begin(self, args, state, control, **kw):
        self.t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.steps.append(time.perf_counter() - self.t)


class Sequential(DPOTrainer):
    def _get_train_sampler(self, train_dataset=None):
        return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)


timer = Timer()
with tempfile.TemporaryDirectory() as out:
    args = DPOConfig(output_dir=out, bf16=False, use_cpu=True, optim="adamw_torch", per_device_train_batch_size=1,
                     gradient_accumulation_steps=1, max_steps=steps, learning_rate=1e-4, lr_scheduler_type="constant",
                     logging_steps=1, save_strategy="no", report_to="none", gradient_checkpointing=False, max_length=seq,
                     beta=0.1, disable_tqdm=True, dataloader_num_workers=0)
    peft = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = Sequential(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         peft_config=peft, callbacks=[timer])
    trainer.train()
print(json.dumps({"step_seconds": timer.steps}))
