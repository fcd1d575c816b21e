// msgpackr ships no typings for its "./index-no-eval" entry (a UMD build without
// new Function, the one workerd accepts). Its API is the main entry's, so re-export those.
declare module "msgpackr/index-no-eval" {
  export * from "msgpackr";
}
