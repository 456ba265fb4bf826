"""The contact sheet of a training extraction: the anonymised clip every few seconds, large
enough for the chief to see that no face and no plate shows, before signing it off
(``pieton vault training-approve``). Times count from the clip's start, as in the report.
"""

from __future__ import annotations

import base64
import re
from html import escape

import cv2
import numpy as np

from tools.vault.anonymised_words import in_french

EVERY_S = 2.0       # a picture every this many seconds of the clip
WIDTH = 480         # px across each picture: a face 20 px wide in 1280 stays visible
MAX_PICTURES = 300  # a long clip: the interval grows instead
_PICTURE = re.compile(r'<img src="(data:image/jpeg;base64,[A-Za-z0-9+/]+=*)" alt="(\d+(?:\.\d+)?) s">')


def pictures(sheet_html: str) -> list[tuple[float, str]]:
    """The (seconds from the clip's start, JPEG data URI) of a sheet ``ContactSheet.html``
    wrote, so that another page (the chief's desk) shows the same pictures."""
    return [(float(t), uri) for uri, t in _PICTURE.findall(sheet_html)]


class ContactSheet:
    """``add(t, bgr)`` for each anonymised frame in order; ``html(...)`` the page."""

    def __init__(self, duration_s: float, every_s: float = EVERY_S):
        self.every = max(every_s, duration_s / MAX_PICTURES if duration_s else every_s)
        self.next = 0.0
        self.pictures: list[tuple[float, str]] = []

    def add(self, t: float, bgr: np.ndarray) -> None:
        if t + 1e-6 < self.next:
            return
        h, w = bgr.shape[:2]
        small = cv2.resize(bgr, (WIDTH, max(1, h * WIDTH // w)), interpolation=cv2.INTER_AREA)
        ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            self.pictures.append((round(t, 2), "data:image/jpeg;base64," + base64.b64encode(jpg.tobytes()).decode()))
        self.next = (int(t / self.every + 1e-6) + 1) * self.every  # on a grid: no drift along the clip

    def html(self, extraction_id: str, anonymised: dict, approve: str) -> str:
        """The sheet as a page of its own, in French (the chief reads it): every picture with
        its time from the clip's start, what was blurred, and how to sign it off."""
        e = escape
        marks = in_french(anonymised.get("plates", "none marked by the chief"))
        cells = "".join(f'<figure><img src="{uri}" alt="{t:.1f} s"><figcaption>{_french_s(t)}</figcaption></figure>'
                        for t, uri in self.pictures)
        style = ("body{font-family:sans-serif;margin:1.5em}.sheet{display:flex;flex-wrap:wrap;gap:8px}"
                 f"figure{{margin:0;text-align:center;font-size:13px}}img{{width:{WIDTH}px}}"
                 ".warn{background:#fff3cd;padding:.5em}code{background:#eee;padding:2px}")
        return (f"<!DOCTYPE html><html lang=fr><head><meta charset=utf-8><title>Planche contact "
                f"{e(extraction_id)}</title><style>{style}</style></head><body>"
                f"<h1>Planche contact de l'extraction de formation {e(extraction_id)}</h1>"
                "<p class=warn>En attente : cet extrait ne quitte le coffre qu'une fois chaque image regardée "
                "(aucun visage, aucune plaque lisible, aucune légende) et la planche validée, sur le poste du chef "
                f"(page Formation) ou par la commande :<br><code>{e(approve)}</code><br>Une plaque encore lisible : "
                "tracez son cadre sur la planche au poste du chef (ou refaites l'extraction avec "
                "<code>--plate T,X,Y,W,H</code> là où elle apparaît d'abord), et refusez celle-ci.</p>"
                f"<p>{len(self.pictures)} image(s), une toutes les {_french_s(self.every)} de l'extrait. "
                f"Visages : {e(in_french(anonymised.get('faces', '')))}. Plaques : {e(marks)}.</p>"
                f"<div class=sheet>{cells}</div></body></html>\n")


def _french_s(t: float) -> str:
    """``3,5 s``: the decimal comma of the page's language (the alt keeps the point, read back
    by ``pictures``)."""
    return f"{t:.1f}".replace(".", ",") + " s"
