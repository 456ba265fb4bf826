"""The media pipeline: camera and microphone to MPEG-TS segments for the sealer.

source -> overlay -> encoder -> pre-event ring / segmenter -> SegmentWriter, one small
stage per module; ``pipeline.MediaPipeline`` composes them for the daemon.
"""
