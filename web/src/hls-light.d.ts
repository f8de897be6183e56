// hls.js ships no types for its "./light" export (the same API without
// subtitles, alternate audio, DRM or CMCD, which a radio does not use).
declare module "hls.js/light" {
  import Hls from "hls.js";
  export * from "hls.js";
  export default Hls;
}
