/// The keys a training config may hold: transformers' `TrainingArguments` names (with
/// transformers' defaults) and Firefly's train_args names (with Firefly's defaults), plus qwenft's
/// own data keys. The table is the single source for validation, `--KEY VALUE` typing, the
/// "did you mean" suggestions and the order of the printed resolved config.
public struct ConfigKey: Sendable {
    public enum Kind: Sendable, Equatable {
        case string, int, double, bool
        case choice([String])
        /// A list of strings, or one string (comma-separated lists are split).
        case stringList
        /// true/false or a path.
        case boolOrString
        /// A path to a JSON file or an inline object (deepspeed).
        case pathOrObject
        /// A JSON object (lr_scheduler_kwargs).
        case object
    }

    public let name: String
    public let kind: Kind
    /// `.null` for optional keys without a default.
    public let defaultValue: JSONValue
    public let nullable: Bool

    init(_ name: String, _ kind: Kind, _ defaultValue: JSONValue, nullable: Bool = false) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.nullable = nullable || defaultValue == .null
    }

    /// "an integer", "true or false", … for messages.
    public var expected: String {
        switch kind {
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a number"
        case .bool: return "true or false"
        case let .choice(values): return "one of " + values.map { "\"\($0)\"" }.joined(separator: ", ")
        case .stringList: return "a list of strings or a comma-separated string"
        case .boolOrString: return "true, false or a path"
        case .pathOrObject: return "a path to a DeepSpeed JSON file or an inline object"
        case .object: return "an object"
        }
    }
}

public enum ConfigKeys {
    static let s = JSONValue.string
    static func i(_ n: Int) -> JSONValue { .int(n) }
    static func d(_ x: Double) -> JSONValue { .double(x) }

    /// Every key qwenft acts on, in the order the resolved config prints them.
    public static let all: [ConfigKey] = [
        // Model, data, mode.
        ConfigKey("model_name_or_path", .string, .null),
        ConfigKey("output_dir", .string, .null),
        ConfigKey("train_file", .string, .null),
        ConfigKey("eval_file", .string, .null),
        ConfigKey("template_name", .string, .null),
        ConfigKey("train_mode", .choice(["full", "lora", "qlora"]), s("qlora")),  // Firefly's default
        ConfigKey("task_type", .choice(["sft", "pretrain", "dpo"]), s("sft")),
        ConfigKey("max_seq_length", .int, i(1024)),
        ConfigKey("adapter_name_or_path", .string, .null),
        ConfigKey("train_on_prompt", .bool, .bool(false)),
        ConfigKey("packing", .bool, .bool(false)),
        ConfigKey("group_by_length", .bool, .bool(false)),
        ConfigKey("shuffle", .bool, .bool(true)),
        ConfigKey("on_bad_record", .choice(["error", "skip"]), s("error")),
        ConfigKey("tokenize_num_workers", .int, .null),
        // Steps and batches.
        ConfigKey("num_train_epochs", .double, d(3.0)),
        ConfigKey("max_steps", .int, i(-1)),
        ConfigKey("per_device_train_batch_size", .int, i(8)),
        ConfigKey("per_device_eval_batch_size", .int, i(8)),
        ConfigKey("gradient_accumulation_steps", .int, i(1)),
        ConfigKey("seed", .int, i(42)),
        ConfigKey("data_seed", .int, .null),
        // Optimizer and schedule.
        ConfigKey("learning_rate", .double, d(5e-5)),
        ConfigKey("lr_scheduler_type", .choice(LRSchedulerType.allCases.map(\.rawValue)), s("linear")),
        ConfigKey("lr_scheduler_kwargs", .object, .object([])),
        ConfigKey("warmup_steps", .double, i(0)),
        ConfigKey("warmup_ratio", .double, d(0.0)),
        ConfigKey("weight_decay", .double, d(0.0)),
        ConfigKey("adam_beta1", .double, d(0.9)),
        ConfigKey("adam_beta2", .double, d(0.999)),
        ConfigKey("adam_epsilon", .double, d(1e-8)),
        ConfigKey("optim", .choice(["adamw_torch", "adamw_torch_fused", "adamw_hf", "paged_adamw_32bit"]), s("adamw_torch")),
        ConfigKey("max_grad_norm", .double, d(1.0)),
        // Precision and memory.
        ConfigKey("bf16", .bool, .bool(false)),
        ConfigKey("fp16", .bool, .bool(false)),
        ConfigKey("gradient_checkpointing", .bool, .bool(false)),
        // qwenft's, after Megatron's --recompute-num-layers (block method): with checkpointing,
        // only the first that many layers are recomputed; null: all.
        ConfigKey("recompute_num_layers", .int, .null),
        ConfigKey("device", .string, s("cpu")),   // qwenft's: cpu, cuda or cuda:N (Device)
        // LoRA (Firefly's names and defaults; PEFT's semantics).
        ConfigKey("lora_rank", .int, i(64)),
        ConfigKey("lora_alpha", .double, i(16)),
        ConfigKey("lora_dropout", .double, d(0.05)),
        ConfigKey("lora_target_modules", .stringList, s("all-linear")),
        ConfigKey("use_rslora", .bool, .bool(false)),
        // Logging, evaluation, saving.
        ConfigKey("logging_steps", .double, i(500)),
        ConfigKey("logging_first_step", .bool, .bool(false)),
        ConfigKey("logging_dir", .string, .null),
        ConfigKey("report_to", .stringList, s("none")),
        ConfigKey("disable_tqdm", .bool, .null),
        ConfigKey("eval_strategy", .choice(["no", "steps", "epoch"]), s("no")),
        ConfigKey("eval_steps", .double, .null),
        ConfigKey("save_strategy", .choice(["no", "steps", "epoch"]), s("steps")),
        ConfigKey("save_steps", .double, i(500)),
        ConfigKey("save_total_limit", .int, .null),
        ConfigKey("save_only_model", .bool, .bool(false)),
        ConfigKey("load_best_model_at_end", .bool, .bool(false)),
        ConfigKey("metric_for_best_model", .string, .null),
        ConfigKey("greater_is_better", .bool, .null),
        ConfigKey("overwrite_output_dir", .bool, .bool(false)),
        ConfigKey("resume_from_checkpoint", .boolOrString, .null),
        ConfigKey("deepspeed", .pathOrObject, .null),
        // Many processes (mpirun): the ZeRO stage without a DeepSpeed file, the collective timeout.
        ConfigKey("zero_stage", .int, .null),
        ConfigKey("ddp_timeout", .double, i(1800)),
        // DPO (task_type dpo; TRL's DPOConfig names and defaults, Firefly's max_prompt_length).
        ConfigKey("beta", .double, d(0.1)),
        ConfigKey("loss_type", .choice(["sigmoid", "ipo", "hinge"]), s("sigmoid")),
        ConfigKey("max_prompt_length", .int, .null),
        ConfigKey("precompute_ref_log_probs", .bool, .bool(false)),
        ConfigKey("disable_dropout", .bool, .bool(true)),
        ConfigKey("rpo_alpha", .double, .null),
        // QLoRA: transformers' BitsAndBytesConfig names (see QuantizationConfig.swift).
        ConfigKey("load_in_4bit", .bool, .bool(false)),
        ConfigKey("bnb_4bit_quant_type", .choice(["nf4", "fp4"]), s("nf4")),
        ConfigKey("bnb_4bit_use_double_quant", .bool, .bool(true)),  // the seeds' (Firefly's) setting
        ConfigKey("bnb_4bit_compute_dtype", .choice(["float32", "bfloat16", "float16", "fp32", "bf16", "fp16"]), .null),
        ConfigKey("bnb_4bit_blocksize", .int, i(64)),
        ConfigKey("llm_int8_skip_modules", .stringList, .null),
    ]

    /// Keys the Python stack takes that change nothing here (data loader workers, DDP, hub,
    /// caches). Accepted so existing configs run; listed in the resolved config's notes.
    public static let ignored: Set<String> = [
        "dataloader_num_workers", "dataloader_pin_memory", "dataloader_drop_last", "dataloader_persistent_workers",
        "remove_unused_columns", "ddp_find_unused_parameters", "ddp_backend", "local_rank",
        "save_on_each_node", "save_safetensors", "log_level", "log_level_replica", "log_on_each_node", "run_name",
        "do_train", "do_eval", "do_predict", "overwrite_cache", "preprocessing_num_workers", "plot_loss",
        "lazy_preprocess", "tf32", "torch_compile", "use_cache", "push_to_hub", "hub_model_id", "hub_token",
        "skip_memory_metrics", "include_num_input_tokens_seen", "logging_nan_inf_filter", "cache_dir",
        "gradient_checkpointing_kwargs", "ddp_bucket_cap_mb", "use_unsloth", "lora_bias", "quantization_method",
        "val_size", "dataset_dir", "full_determinism", "label_names", "prediction_loss_only",
    ]

    /// Other projects' names for our keys: LLaMA-Factory, Qwen's finetune.py, transformers 4.x.
    /// (Keys that map onto train_mode or task_type with a value change are handled in
    /// `TrainingConfig`: use_lora, q_lora, finetuning_type, quantization_bit, stage.)
    public static let aliases: [String: String] = [
        "evaluation_strategy": "eval_strategy",
        "data_path": "train_file",
        "dataset": "train_file",
        "eval_data_path": "eval_file",
        "model_max_length": "max_seq_length",
        "cutoff_len": "max_seq_length",
        "lora_r": "lora_rank",
        "lora_target": "lora_target_modules",
        "template": "template_name",
        "pref_beta": "beta",
        "pref_loss": "loss_type",
    ]

    /// Keys whose value decides train_mode / task_type (see `TrainingConfig`).
    public static let modeKeys: Set<String> = ["use_lora", "q_lora", "finetuning_type", "quantization_bit", "stage"]

    static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    public static func key(_ name: String) -> ConfigKey? { byName[name] }

    /// Every name a config may use, for suggestions.
    public static var knownNames: [String] {
        all.map(\.name) + Array(aliases.keys) + Array(modeKeys) + Array(ignored)
    }
}
