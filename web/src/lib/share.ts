// Share links for the seed's networks, built from a landing URL the same
// way the API builds them (serving/services/shares.py), so the dialog
// needs no second request (opening a share through the API counts a click).

export const NETWORKS = ["x", "facebook", "whatsapp", "telegram", "reddit", "linkedin", "email"] as const;
export type Network = (typeof NETWORKS)[number];

export const NETWORK_NAMES: Record<Network, string> = {
  x: "X",
  facebook: "Facebook",
  whatsapp: "WhatsApp",
  telegram: "Telegram",
  reddit: "Reddit",
  linkedin: "LinkedIn",
  email: "Email",
};

/** The landing URL with the campaign parameters of one network. */
export function taggedUrl(landing: string, network: Network, code: string | null): string {
  const url = new URL(landing);
  url.searchParams.set("utm_source", network);
  url.searchParams.set("utm_medium", network === "email" ? "email" : "social");
  url.searchParams.set("utm_campaign", "track_share");
  if (code) url.searchParams.set("utm_content", code);
  return url.toString();
}

export function shareText(genre: string | null | undefined): string {
  return `Listening to a ${(genre ?? "new").replace(/_/g, " ")} track on SonicForge radio`;
}

export function shareUrls(landing: string, genre: string | null | undefined, code: string | null): Record<Network, string> {
  const text = shareText(genre);
  const q = encodeURIComponent;
  const u = (n: Network): string => q(taggedUrl(landing, n, code));
  return {
    x: `https://twitter.com/intent/tweet?text=${q(text)}&url=${u("x")}`,
    facebook: `https://www.facebook.com/sharer/sharer.php?u=${u("facebook")}`,
    whatsapp: `https://wa.me/?text=${q(text + " " + taggedUrl(landing, "whatsapp", code))}`,
    telegram: `https://t.me/share/url?url=${u("telegram")}&text=${q(text)}`,
    reddit: `https://www.reddit.com/submit?url=${u("reddit")}&title=${q(text)}`,
    linkedin: `https://www.linkedin.com/sharing/share-offsite/?url=${u("linkedin")}`,
    email: `mailto:?subject=${q(text)}&body=${u("email")}`,
  };
}

/** A link to this page for one track, when there is no share code (signed out). */
export function plainLanding(origin: string, trackId: string): string {
  const url = new URL("/listen", origin);
  url.searchParams.set("track", trackId);
  return url.toString();
}
