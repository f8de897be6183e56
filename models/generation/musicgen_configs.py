"""MusicGen architectures written in code, for random-weight models.

``published_config`` rebuilds the architecture of facebook/musicgen-small,
-medium and -large from their published configuration (T5-base text
encoder, the 32 kHz EnCodec, the decoder sizes), so speed and memory can be
measured on any machine without downloading weights. ``tiny_config`` is the
same architecture a few layers deep, for tests. ``offline_processor`` builds
a word-level tokenizer with the ``tokenizers`` library, so nothing is
fetched from the hub.

Random weights make noise, not music: these models exist to exercise the
real loading and generation code and to time it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

Size = Literal["small", "medium", "large"]
SIZES: tuple[Size, ...] = ("small", "medium", "large")

# Decoder sizes of the published checkpoints (config.json of each repo).
_DECODERS: dict[str, dict[str, Any]] = {
    "small": {
        "hidden_size": 1024,
        "ffn_dim": 4096,
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
    },
    "medium": {
        "hidden_size": 1536,
        "ffn_dim": 6144,
        "num_attention_heads": 24,
        "num_hidden_layers": 48,
    },
    "large": {
        "hidden_size": 2048,
        "ffn_dim": 8192,
        "num_attention_heads": 32,
        "num_hidden_layers": 48,
    },
}

# t5-base, the text encoder of every MusicGen size.
_T5_BASE: dict[str, Any] = {
    "vocab_size": 32128,
    "d_model": 768,
    "d_kv": 64,
    "d_ff": 3072,
    "num_layers": 12,
    "num_decoder_layers": 12,
    "num_heads": 12,
    "relative_attention_num_buckets": 32,
    "feed_forward_proj": "relu",
    "dropout_rate": 0.1,
}

# facebook/encodec_32khz, the audio codec of every mono MusicGen: 50 frames
# a second (hop 640) and 4 codebooks of 2048 entries at 2.2 kbps.
_ENCODEC_32KHZ: dict[str, Any] = {
    "sampling_rate": 32000,
    "audio_channels": 1,
    "num_filters": 64,
    "hidden_size": 128,
    "num_lstm_layers": 2,
    "upsampling_ratios": [8, 5, 4, 4],
    "codebook_size": 2048,
    "codebook_dim": 128,
    "target_bandwidths": [2.2],
    "normalize": False,
    "chunk_length_s": None,
    "overlap": None,
    "use_causal_conv": False,
    "pad_mode": "reflect",
    "norm_type": "weight_norm",
    "kernel_size": 7,
    "last_kernel_size": 7,
    "residual_kernel_size": 3,
    "dilation_growth_rate": 2,
    "num_residual_layers": 1,
    "compress": 2,
    "trim_right_ratio": 1.0,
    "use_conv_shortcut": False,
}

_DECODER_COMMON: dict[str, Any] = {
    "vocab_size": 2048,
    "num_codebooks": 4,
    "audio_channels": 1,
    "max_position_embeddings": 2048,
    "pad_token_id": 2048,
    "bos_token_id": 2048,
    "activation_function": "gelu",
    "dropout": 0.1,
    "layerdrop": 0.0,
    "scale_embedding": False,
    "tie_word_embeddings": False,
}

# The published generation defaults (generation_config.json of each repo).
GENERATION_DEFAULTS: dict[str, Any] = {
    "do_sample": True,
    "guidance_scale": 3.0,
    "top_k": 250,
    "max_length": 1500,
}

# Prompt words known to the offline tokenizer; anything else maps to <unk>,
# which is fine for models whose weights are random anyway.
_WORDS = [
    "house",
    "deep",
    "techno",
    "trance",
    "uplifting",
    "drum",
    "and",
    "bass",
    "liquid",
    "lo-fi",
    "hip",
    "hop",
    "ambient",
    "bpm",
    "minor",
    "major",
    "dorian",
    "warm",
    "groovy",
    "dark",
    "hypnotic",
    "euphoric",
    "emotional",
    "energetic",
    "atmospheric",
    "mellow",
    "relaxing",
    "calm",
    "floating",
    "kick",
    "claps",
    "hats",
    "hi-hats",
    "chord",
    "stabs",
    "rhodes",
    "bass",
    "pads",
    "lead",
    "arpeggios",
    "snare",
    "rolls",
    "breakbeat",
    "drums",
    "sub",
    "reese",
    "piano",
    "drones",
    "vinyl",
    "crackle",
    "tape",
    "reverb",
    "wide",
    "stereo",
    "club",
    "mix",
    "driving",
    "warehouse",
    "festival",
    "crisp",
    "rolling",
    "low-passed",
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "#",
]


def published_config(size: Size) -> Any:
    """The ``MusicgenConfig`` of facebook/musicgen-``size``."""
    from transformers import EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, T5Config

    if size not in _DECODERS:
        raise ValueError(f"unknown MusicGen size {size!r}; allowed: {', '.join(SIZES)}")
    return MusicgenConfig(
        text_encoder=T5Config(**_T5_BASE),
        audio_encoder=EncodecConfig(**_ENCODEC_32KHZ),
        decoder=MusicgenDecoderConfig(**_DECODER_COMMON, **_DECODERS[size]),
    )


def tiny_config() -> Any:
    """The MusicGen architecture a few layers deep (about 0.2M parameters):
    same codec frame rate and sample rate, 4 codebooks, so every code path
    (delay pattern, continuation, decoding) runs as with the real models."""
    from transformers import EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, T5Config

    text = T5Config(
        vocab_size=len(_WORDS) + 8, d_model=16, d_kv=4, d_ff=32, num_layers=1,
        num_decoder_layers=1, num_heads=2,
    )  # fmt: skip
    codec = EncodecConfig(
        **{
            **_ENCODEC_32KHZ,
            "num_filters": 4,
            "hidden_size": 16,
            "num_lstm_layers": 1,
            "codebook_size": 64,
            "codebook_dim": 16,
            # 4 codebooks of 64 entries (6 bits) at 50 Hz is 1.2 kbps.
            "target_bandwidths": [1.2],
        }
    )
    decoder = MusicgenDecoderConfig(
        **{
            **_DECODER_COMMON,
            "vocab_size": 64,
            "pad_token_id": 64,
            "bos_token_id": 64,
            "hidden_size": 16,
            "ffn_dim": 32,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
        }
    )
    return MusicgenConfig(text_encoder=text, audio_encoder=codec, decoder=decoder)


def offline_processor(*, sampling_rate: int = 32000) -> Any:
    """A ``MusicgenProcessor`` whose tokenizer is built locally (word level)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import EncodecFeatureExtractor, MusicgenProcessor, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    features = EncodecFeatureExtractor(feature_size=1, sampling_rate=sampling_rate)
    return MusicgenProcessor(feature_extractor=features, tokenizer=tokenizer)


def build_random_model(size: Size | Literal["tiny"], *, seed: int = 0) -> tuple[Any, Any]:
    """A random-weight MusicGen of ``size`` and its offline processor."""
    import torch
    from transformers import GenerationConfig, MusicgenForConditionalGeneration

    config = tiny_config() if size == "tiny" else published_config(size)
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(config)
    with torch.no_grad():
        # EnCodec's codebooks are buffers that start at zero (trained values
        # come with the weights): filled with noise here, different codes
        # decode to different audio, as with real weights.
        codec: Any = model.audio_encoder
        for layer in codec.quantizer.layers:
            layer.codebook.embed.normal_(0.0, 1.0)
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    model.generation_config = GenerationConfig(
        **GENERATION_DEFAULTS,
        pad_token_id=config.decoder.pad_token_id,
        bos_token_id=config.decoder.bos_token_id,
        decoder_start_token_id=config.decoder.bos_token_id,
    )
    model.eval()
    return model, offline_processor(sampling_rate=config.audio_encoder.sampling_rate)


def save_random_model(
    directory: str | Path, size: Size | Literal["tiny"], *, seed: int = 0
) -> Path:
    """Save a random-weight model and processor as ``save_pretrained`` does
    for real weights, so it loads through the same code path."""
    model, processor = build_random_model(size, seed=seed)
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
