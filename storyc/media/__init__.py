"""Stage 2, media: pixels and ffmpeg, with no storyboard logic of their own.

Takes a scene's shots (text, durations, reference images) or finished video
files; gives animatic cards and MP4s (`animatic`), and probes, first and last
frames (kept by the video's content in a frame store, for continuity) and
joins of videos (`video`, through the ffmpeg that imageio-ffmpeg ships).  The
animatic backend (`storyc.render.backends.animatic`) and the previews
(`storyc.preview`) build on it.
"""
