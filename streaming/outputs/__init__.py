"""Outputs of the timeline: HLS ladder, MP3 mount, visualizer feed, RTMP."""
