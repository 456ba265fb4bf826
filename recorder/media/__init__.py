"""The media pipeline: camera and microphone to MPEG-TS segments for the sealer.

source (``source``, ``overlay``, ``encoder``; ``audio``) -> ``encode`` -> ``router`` ->
pre-event ``ring`` | ``segmenter`` -> ``mpegts`` -> the sealer (recorder.evidence.recording),
one small stage per module with the seams typed in ``stages``; ``health`` and
``nightmode`` watch on the side, ``worker`` hands the devices' callbacks to the one media
thread, and ``pipeline.MediaPipeline`` composes them for the daemon.
"""
