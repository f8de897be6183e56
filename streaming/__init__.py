"""The streaming service: playout from the rotation to HLS, MP3, RTMP and a
visualizer feed, on one continuous PCM timeline that never goes silent."""
