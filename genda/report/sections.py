"""What the report is organised by: one section per problem, in the order the course
reports present them, and the display name of every method."""

from __future__ import annotations

from dataclasses import dataclass

# Display names of the methods (the registry's names are short).
NAMES = {
    "source-only": "Source only",
    "target-only": "Target only",
    "dann": "DANN",
    "adda": "ADDA",
    "dsn": "DSN",
    "pixelda": "PixelDA",
    "selftrain": "Self-training",
    "selftrain-dann": "Self-training + DANN",
    "dcgan": "DCGAN (model A)",
    "gan": "Improved GAN (model B)",
    "stylegan2": "StyleGAN2 (model C)",
    "acgan": "ACGAN",
    "vae": "VAE",
    "ddpm": "Conditional DDPM (CFG)",
}


def name(method: object) -> str:
    return NAMES.get(str(method).lower(), str(method))


@dataclass(frozen=True)
class Section:
    """One problem: its heading, the methods whose runs it holds, a one-line intro, whether
    it holds generative scores, and whether the UDA tables and matrices go in it."""

    heading: str
    methods: tuple[str, ...]
    intro: str
    generative: bool = True
    tables: bool = False


SECTIONS = (
    Section(
        "GAN models",
        ("dcgan", "gan", "stylegan2"),
        "Unconditional GANs, scored on the same features and sample count where compared.",
    ),
    Section("ACGAN", ("acgan",), "Class- or attribute-conditional GAN."),
    Section("VAE", ("vae",), "Variational auto-encoder: reconstructions, samples and latents."),
    Section("Diffusion", ("ddpm",), "Class-conditional diffusion with classifier-free guidance."),
    Section(
        "Domain adaptation",
        ("source-only", "dann", "target-only"),
        "Target accuracy with the lower (source-only) and upper (target-only) bounds.",
        generative=False,
        tables=True,
    ),
    Section(
        "Adaptation methods beyond DANN",
        ("adda", "dsn", "pixelda", "selftrain", "selftrain-dann"),
        "Their rows are in the domain-adaptation tables above; here are their settings and "
        "figures.",
        generative=False,
    ),
)
OTHER = Section("Other runs", (), "Runs of methods outside the sections above.")


def section_of(method: object) -> Section:
    for s in SECTIONS:
        if str(method).lower() in s.methods:
            return s
    return OTHER
