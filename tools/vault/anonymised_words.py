"""The anonymiser's account of itself (tools/vault/anonymise.py: the ``anonymised`` table of
a training report), in the French of the pages a chief or a trainer reads. The signed JSON
keeps the anonymiser's own English sentences; the pages rewrite them phrase by phrase, and
leave anything they do not know as it is."""

from __future__ import annotations

import re

# The table's keys, in words.
LABELS = {"faces": "Visages", "frames": "Images", "frames_with_faces_blurred": "Images aux visages floutés",
          "searches": "Recherches de visages", "plates": "Plaques", "overlay": "Incrustation",
          "audio": "Son", "video": "Vidéo"}

# The anonymiser's phrases (and its face detector's), each with its French.
_PHRASES = [(re.compile(english), french) for english, french in (
    (r"^blurred: ", "floutés : "),
    (r"searched every (\d+) frames with boxes moved or held in between",
     r"cherchés toutes les \1 images, les cadres suivis ou gardés entre deux recherches"),
    (r"margin (\d+)% each side", r"marge de \1 % de chaque côté"),
    (r"frames (\d+) px wide", r"images de \1 px de large"),
    (r"\bpasses x", "passes : x"),
    (r"\(from ([\d.]+) if confirmed\)", r"(dès \1 si confirmé)"),
    (r"faces up to ([\d.]+) % of the width \((\d+) px on 1280\)",
     r"visages jusqu'à \1 % de la largeur (\2 px sur 1280)"),
    (r"^(\d+) box\(es\) drawn by the chief, followed from there by template matching",
     r"\1 cadre(s) tracé(s) par le chef de service, suivi(s) ensuite par corrélation d'image"),
    (r"^none marked by the chief", "aucune marquée par le chef de service"),
    (r"; checked on the contact sheet$", " ; vérifiées sur la planche contact"),
    (r"^masked: top (\d+) px of each frame$", r"masquée : les \1 pixels du haut de chaque image"),
    (r"^removed \(always, for training\)$", "supprimé (toujours, pour la formation)"),
    (r"^re-encoded with libx264 \(crf (\d+)\), no metadata$", r"réencodée avec libx264 (crf \1), sans métadonnées"),
)]


def in_french(text) -> str:
    """One of the anonymiser's sentences in French."""
    text = str(text)
    for english, french in _PHRASES:
        text = english.sub(french, text)
    return text


def anonymised_french(summary: dict) -> list[tuple[str, str]]:
    """The ``anonymised`` table as (label, words) pairs in French, in its order."""
    return [(LABELS.get(key, key.replace("_", " ")), in_french(value)) for key, value in summary.items()]
